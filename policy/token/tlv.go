package token

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// TLV is one BER-TLV data object of an EMV payload. A constructed object has
// Children and no Value. Redacted replaces Value for objects that carry card
// data (PAN, Track 2): the decoder masks them so no full PAN is kept.
type TLV struct {
	Tag      string // upper-case hex of the tag bytes, e.g. "9F36"
	Value    []byte
	Children []TLV
	Redacted string
}

// MarshalJSON writes {"tag":"85","value":"4350563031"} for a primitive object
// and {"tag":"61","children":[...]} for a constructed one, hex upper-case.
func (t TLV) MarshalJSON() ([]byte, error) {
	type prim struct {
		Tag   string `json:"tag"`
		Value string `json:"value"`
	}
	type cons struct {
		Tag      string `json:"tag"`
		Children []TLV  `json:"children"`
	}
	if t.Children != nil {
		return json.Marshal(cons{t.Tag, t.Children})
	}
	if t.Redacted != "" {
		return json.Marshal(prim{t.Tag, t.Redacted})
	}
	return json.Marshal(prim{t.Tag, upperHex(t.Value)})
}

// maxTLVDepth bounds recursion: a CPM payload nests at most 61 > 63.
const maxTLVDepth = 8

// ParseTLV parses a BER-TLV stream strictly: tags of one to three bytes,
// definite lengths of up to four length bytes, every value inside the data.
// Values are sub-slices of b: a length field claiming gigabytes fails the
// bounds check before anything is allocated.
func ParseTLV(b []byte) ([]TLV, error) {
	return parseTLVList(b, 0, 0, false)
}

func parseTLVList(b []byte, base, depth int, template bool) ([]TLV, error) {
	if depth > maxTLVDepth {
		return nil, fmt.Errorf("tlv: nesting deeper than %d at offset %d", maxTLVDepth, base)
	}
	var out []TLV
	off := 0
	for off < len(b) {
		start := base + off
		tag, constructed, n, err := readTag(b[off:])
		if err != nil {
			return nil, fmt.Errorf("tlv: at offset %d: %w", start, err)
		}
		off += n
		length, n, err := readLength(b[off:])
		if err != nil {
			return nil, fmt.Errorf("tlv: tag %s at offset %d: %w", tag, start, err)
		}
		off += n
		if length > uint64(len(b)-off) {
			return nil, fmt.Errorf("tlv: tag %s at offset %d: truncated value: length %d but only %d bytes left", tag, start, length, len(b)-off)
		}
		val := b[off : off+int(length)]
		if template {
			for _, prev := range out {
				if prev.Tag == tag {
					return nil, fmt.Errorf("tlv: duplicate tag %s in one template at offset %d", tag, start)
				}
			}
		}
		t := TLV{Tag: tag}
		if constructed {
			kids, err := parseTLVList(val, base+off, depth+1, true)
			if err != nil {
				return nil, err
			}
			if kids == nil {
				kids = []TLV{}
			}
			t.Children = kids
		} else {
			t.Value = val
		}
		off += int(length)
		out = append(out, t)
	}
	return out, nil
}

// readTag reads a BER tag. 0x00 and 0xFF are the EMV padding bytes; a strict
// parser refuses them rather than skip over data it cannot account for.
func readTag(b []byte) (tag string, constructed bool, n int, err error) {
	if len(b) == 0 {
		return "", false, 0, fmt.Errorf("truncated tag")
	}
	if b[0] == 0x00 || b[0] == 0xFF {
		return "", false, 0, fmt.Errorf("trailing bytes: padding byte %02X where a tag was expected", b[0])
	}
	constructed = b[0]&0x20 != 0
	n = 1
	if b[0]&0x1F == 0x1F {
		for {
			if n >= len(b) {
				return "", false, 0, fmt.Errorf("truncated tag %X", b[:n])
			}
			if n >= 3 {
				return "", false, 0, fmt.Errorf("tag %X… longer than 3 bytes", b[:n])
			}
			n++
			if b[n-1]&0x80 == 0 {
				break
			}
		}
	}
	return upperHex(b[:n]), constructed, n, nil
}

// readLength reads a definite BER length of up to four length bytes.
func readLength(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("truncated length: no length byte")
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	k := int(b[0] & 0x7F)
	switch {
	case k == 0:
		return 0, 0, fmt.Errorf("indefinite length (80) is not allowed")
	case k > 4:
		return 0, 0, fmt.Errorf("length with %d length bytes is not supported", k)
	case k >= len(b):
		return 0, 0, fmt.Errorf("truncated length: %d length bytes announced, %d present", k, len(b)-1)
	}
	var l uint64
	for _, c := range b[1 : 1+k] {
		l = l<<8 | uint64(c)
	}
	return l, 1 + k, nil
}

// EncodeTLV encodes objects as BER-TLV with minimal lengths; constructed
// objects are encoded from their Children. It is the inverse of ParseTLV
// for unredacted trees.
func EncodeTLV(objs []TLV) ([]byte, error) {
	var out []byte
	for _, o := range objs {
		tag, err := hex.DecodeString(o.Tag)
		if err != nil || len(tag) == 0 {
			return nil, fmt.Errorf("tlv: bad tag %q", o.Tag)
		}
		val := o.Value
		if o.Children != nil {
			if val, err = EncodeTLV(o.Children); err != nil {
				return nil, err
			}
		}
		out = append(out, tag...)
		out = appendLength(out, len(val))
		out = append(out, val...)
	}
	return out, nil
}

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xFF:
		return append(b, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(b, 0x82, byte(n>>8), byte(n))
	default:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

// upperHex is hex in upper case, the way EMV documents write tags and values.
func upperHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0xF])
	}
	return sb.String()
}

package token

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
)

// EMV CPM tags (EMVCo QR Code Specification for Payment Systems,
// Consumer-Presented Mode).
const (
	tagPayloadFormat  = "85"   // "CPV01"
	tagAppTemplate    = "61"   // application template, may repeat
	tagCommonTemplate = "62"   // common data template
	tagAID            = "4F"   // application definition file name
	tagLabel          = "50"   // application label
	tagPAN            = "5A"   // application PAN
	tagTrack2         = "57"   // Track 2 equivalent data
	tagATC            = "9F36" // application transaction counter
)

// looksEMV tells an EMV CPM payload from other text: standard base64 whose
// first byte is the payload format indicator tag 85 or a template tag.
// Numeric wallet codes never start with the base64 letters this needs.
func looksEMV(text []byte) bool {
	if len(text) < 4 || len(text)%4 != 0 {
		return false
	}
	var head [3]byte
	if _, err := base64.StdEncoding.Decode(head[:], text[:4]); err != nil {
		return false
	}
	return head[0] == 0x85 || head[0] == 0x61 || head[0] == 0x62
}

// cpm is what decodeEMV learns beyond the Token: the account number, which
// only the verifier's keyed hash may see.
type cpm struct {
	account []byte
	payload []byte
}

func decodeEMV(text []byte) (*Token, *cpm, error) {
	payload := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(payload, text)
	if err != nil {
		return nil, nil, errorf(Malformed, "EMV QR is not base64: %v", err)
	}
	payload = payload[:n]
	tok, acct, err := ParseCPM(payload)
	if err != nil {
		return nil, nil, err
	}
	return tok, &cpm{account: acct, payload: payload}, nil
}

// ParseCPM decodes an EMV CPM payload (the bytes under the base64). It
// returns the token with a redacted TLV tree and, separately, the account
// number digits (PAN or Track 2 PAN) for the caller to hash and forget.
func ParseCPM(payload []byte) (*Token, []byte, error) {
	tree, err := ParseTLV(payload)
	if err != nil {
		return nil, nil, errorf(Malformed, "EMV QR: %v", err)
	}
	if len(tree) == 0 || tree[0].Tag != tagPayloadFormat || string(tree[0].Value) != "CPV01" {
		return nil, nil, errorf(Malformed, "EMV QR does not start with payload format indicator 85 = CPV01")
	}
	seen := map[string]bool{}
	var apps, common []TLV
	for _, t := range tree {
		if seen[t.Tag] && t.Tag != tagAppTemplate {
			return nil, nil, errorf(Malformed, "EMV QR: tag %s appears twice at the top level", t.Tag)
		}
		seen[t.Tag] = true
		switch t.Tag {
		case tagAppTemplate:
			if t.Children == nil {
				return nil, nil, errorf(Malformed, "EMV QR: application template 61 is not constructed")
			}
			apps = append(apps, t)
		case tagCommonTemplate:
			if t.Children == nil {
				return nil, nil, errorf(Malformed, "EMV QR: common data template 62 is not constructed")
			}
			common = append(common, t)
		}
	}
	if len(apps) == 0 {
		return nil, nil, errorf(Malformed, "EMV QR has no application template 61")
	}
	// The first application is the one the wallet prefers; data it lacks
	// comes from the common template.
	scope := append([]TLV{apps[0]}, common...)
	tok := &Token{Kind: KindEMV}
	if v, ok := findTag(scope, tagAID); ok {
		tok.AID = upperHex(v)
	}
	if v, ok := findTag(scope, tagLabel); ok {
		tok.Label = printable(v)
	}
	var acct []byte
	if v, ok := findTag(scope, tagPAN); ok {
		if acct, err = panDigits(v); err != nil {
			return nil, nil, errorf(Malformed, "EMV QR: PAN (5A): %v", err)
		}
	} else if v, ok := findTag(scope, tagTrack2); ok {
		if acct, err = track2PAN(v); err != nil {
			return nil, nil, errorf(Malformed, "EMV QR: Track 2 (57): %v", err)
		}
	} else {
		return nil, nil, errorf(Malformed, "EMV QR has neither a PAN (5A) nor Track 2 data (57)")
	}
	tok.PANLast4 = string(acct[len(acct)-4:])
	if v, ok := findTag(scope, tagATC); ok {
		if len(v) != 2 {
			return nil, nil, errorf(Malformed, "EMV QR: ATC (9F36) is %d bytes, want 2", len(v))
		}
		tok.ATC, tok.HasATC = uint32(binary.BigEndian.Uint16(v)), true
	}
	tok.TLV = redact(tree)
	return tok, acct, nil
}

// findTag searches the objects depth-first (61 > 63 nests) for a tag.
func findTag(objs []TLV, tag string) ([]byte, bool) {
	for _, o := range objs {
		if o.Tag == tag && o.Children == nil {
			return o.Value, true
		}
		if v, ok := findTag(o.Children, tag); ok {
			return v, true
		}
	}
	return nil, false
}

// panDigits reads a packed-BCD PAN; F is allowed only as trailing padding.
func panDigits(v []byte) ([]byte, error) {
	s := strings.TrimRight(upperHex(v), "F")
	for _, c := range s {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("nibble %c is not a digit", c)
		}
	}
	return checkPANLen([]byte(s))
}

// track2PAN reads the PAN of Track 2 equivalent data: digits up to the
// field separator D.
func track2PAN(v []byte) ([]byte, error) {
	s := upperHex(v)
	sep := strings.IndexByte(s, 'D')
	if sep < 0 {
		return nil, fmt.Errorf("no field separator D")
	}
	for _, c := range s[:sep] {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("nibble %c in the PAN is not a digit", c)
		}
	}
	return checkPANLen([]byte(s[:sep]))
}

func checkPANLen(d []byte) ([]byte, error) {
	if len(d) < 12 || len(d) > 19 {
		return nil, fmt.Errorf("account number has %d digits, want 12 to 19", len(d))
	}
	return d, nil
}

// redact copies the tree, masking PAN and Track 2 values to their last
// four PAN digits so the tree can be shown and logged.
func redact(objs []TLV) []TLV {
	out := make([]TLV, len(objs))
	for i, o := range objs {
		c := TLV{Tag: o.Tag}
		switch {
		case o.Children != nil:
			c.Children = redact(o.Children)
		case o.Tag == tagPAN || o.Tag == tagTrack2:
			c.Redacted = mask(upperHex(o.Value))
		default:
			c.Value = append([]byte(nil), o.Value...)
		}
		out[i] = c
	}
	return out
}

// mask replaces every nibble of a hex rendering with '*' except the last
// four PAN digits, the F padding and the Track 2 separator D; the expiry
// and discretionary data after D are masked too.
func mask(h string) string {
	b := []byte(h)
	end := strings.IndexByte(h, 'D')
	track2 := end >= 0
	if !track2 {
		end = len(strings.TrimRight(h, "F"))
	}
	for i := range b {
		if i < end-4 || (track2 && i > end) {
			b[i] = '*'
		}
	}
	return string(b)
}

func printable(v []byte) string {
	b := make([]byte, len(v))
	for i, c := range v {
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

func (v *Verifier) verifyEMV(text []byte, ledger Ledger) (*Token, error) {
	tok, c, err := decodeEMV(text)
	if err != nil {
		return nil, err
	}
	tok.Account = v.keyedHash("emv-pan", c.account)
	clear(c.account)
	if tok.HasATC {
		tok.ReplayKey = fmt.Sprintf("emv:%s:%d", tok.Account, tok.ATC)
	} else {
		// Without a counter only an exact copy of the payload is detectable.
		tok.ReplayKey = "emv:" + tok.Account + ":p" + v.keyedHash("emv-payload", c.payload)
	}
	if ledger == nil {
		return tok, nil
	}
	if tok.HasATC {
		if last, ok := ledger.LastATC(tok.Account); ok && tok.ATC <= last {
			return tok, errorf(ATCReplayed, "ATC %d is not above the last seen ATC %d of card …%s", tok.ATC, last, tok.PANLast4)
		}
	}
	if ledger.Seen(tok.ReplayKey) {
		if tok.HasATC {
			return tok, errorf(ATCReplayed, "ATC %d of card …%s was already used", tok.ATC, tok.PANLast4)
		}
		return tok, errorf(Replayed, "this EMV QR of card …%s was already used", tok.PANLast4)
	}
	return tok, nil
}

// EMVSample describes a consumer-presented QR for MintEMV.
type EMVSample struct {
	AID   []byte // 4F; A0000000041010 (Mastercard) when empty
	Label string // 50
	PAN   string // digits, 12 to 19
	ATC   uint16 // 9F36
}

// MintEMV builds the base64 text of an EMV CPM payload: 85 CPV01 and an
// application template 61 with AID, label, PAN and, nested in the
// transparent template 63, the ATC. It is for tests and the demo; real
// payloads come from a wallet with a cryptogram the till cannot check.
func MintEMV(s EMVSample) (string, error) {
	if _, err := checkPANLen([]byte(s.PAN)); err != nil {
		return "", fmt.Errorf("mint EMV: %w", err)
	}
	for _, c := range s.PAN {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("mint EMV: PAN has non-digit %q", c)
		}
	}
	pan := s.PAN
	if len(pan)%2 == 1 {
		pan += "F"
	}
	panBCD := make([]byte, len(pan)/2)
	for i := range panBCD {
		panBCD[i] = nibble(pan[2*i])<<4 | nibble(pan[2*i+1])
	}
	aid := s.AID
	if len(aid) == 0 {
		aid = []byte{0xA0, 0, 0, 0, 0x04, 0x10, 0x10}
	}
	app := []TLV{{Tag: tagAID, Value: aid}}
	if s.Label != "" {
		app = append(app, TLV{Tag: tagLabel, Value: []byte(s.Label)})
	}
	app = append(app,
		TLV{Tag: tagPAN, Value: panBCD},
		TLV{Tag: "63", Children: []TLV{{Tag: tagATC, Value: []byte{byte(s.ATC >> 8), byte(s.ATC)}}}},
	)
	b, err := EncodeTLV([]TLV{
		{Tag: tagPayloadFormat, Value: []byte("CPV01")},
		{Tag: tagAppTemplate, Children: app},
	})
	if err != nil {
		return "", fmt.Errorf("mint EMV: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func nibble(c byte) byte {
	if c == 'F' {
		return 0xF
	}
	return c - '0'
}

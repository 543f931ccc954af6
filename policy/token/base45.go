package token

import (
	"fmt"
	"strings"
)

// base45Alphabet is RFC 9285's table: the QR alphanumeric mode character set,
// which is why PG1 uses base45 rather than base64 (denser QR codes).
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// base45Values maps a byte to its base45 value, or -1.
var base45Values = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base45Alphabet); i++ {
		t[base45Alphabet[i]] = int8(i)
	}
	return t
}()

// Base45Encode encodes b as RFC 9285 base45.
func Base45Encode(b []byte) string {
	var sb strings.Builder
	sb.Grow((len(b)/2)*3 + 2)
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])<<8 | int(b[i+1])
		sb.WriteByte(base45Alphabet[n%45])
		sb.WriteByte(base45Alphabet[(n/45)%45])
		sb.WriteByte(base45Alphabet[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		sb.WriteByte(base45Alphabet[n%45])
		sb.WriteByte(base45Alphabet[n/45])
	}
	return sb.String()
}

// Base45Decode decodes RFC 9285 base45. Every encoding is unique, so
// Base45Encode(Base45Decode(s)) == s for every accepted s.
func Base45Decode(s []byte) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, fmt.Errorf("base45: length %d leaves a single character at the end", len(s))
	}
	out := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		end := min(i+3, len(s))
		n := 0
		mul := 1
		for j := i; j < end; j++ {
			v := base45Values[s[j]]
			if v < 0 {
				return nil, fmt.Errorf("base45: invalid character %q at offset %d", s[j], j)
			}
			n += int(v) * mul
			mul *= 45
		}
		if end-i == 3 {
			if n > 0xFFFF {
				return nil, fmt.Errorf("base45: group at offset %d decodes to %d, more than 65535", i, n)
			}
			out = append(out, byte(n>>8), byte(n))
		} else {
			if n > 0xFF {
				return nil, fmt.Errorf("base45: final pair at offset %d decodes to %d, more than 255", i, n)
			}
			out = append(out, byte(n))
		}
	}
	return out, nil
}

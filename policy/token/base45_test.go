package token

import (
	"bytes"
	"strings"
	"testing"
)

// Vectors from RFC 9285 section 4.
func TestBase45RFCVectors(t *testing.T) {
	tests := []struct{ raw, enc string }{
		{"AB", "BB8"},
		{"Hello!!", "%69 VD92EX0"},
		{"base-45", "UJCLQE7W581"},
		{"ietf!", "QED8WEX0"},
		{"", ""},
		{"\x00", "00"},
		{"\xff\xff", "FGW"},
	}
	for _, tc := range tests {
		if got := Base45Encode([]byte(tc.raw)); got != tc.enc {
			t.Errorf("Base45Encode(%q) = %q, want %q", tc.raw, got, tc.enc)
		}
		got, err := Base45Decode([]byte(tc.enc))
		if err != nil || string(got) != tc.raw {
			t.Errorf("Base45Decode(%q) = %q, %v; want %q", tc.enc, got, err, tc.raw)
		}
	}
}

func TestBase45Invalid(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"GGW", "more than 65535"},   // RFC 9285 section 6: 65536 does not fit two bytes
		{"ZZZ", "more than 65535"},   // 35+35*45+35*2025
		{"A", "single character"},    // length 1 mod 3
		{"BB8A", "single character"}, // 4 characters
		{"bb8", "invalid character"}, // lower case is not in the alphabet
		{"B\x008", "invalid character"},
		{"::", "more than 255"}, // 44+44*45 = 2024 > 255
	}
	for _, tc := range tests {
		_, err := Base45Decode([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Base45Decode(%q) error = %v, want it to mention %q", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzBase45(f *testing.F) {
	f.Add([]byte("BB8"))
	f.Add([]byte("%69 VD92EX0"))
	f.Add([]byte("GGW"))
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, err := Base45Decode(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if enc := Base45Encode(raw); !bytes.Equal([]byte(enc), in) {
			t.Fatalf("decode then encode of %q gave %q", in, enc)
		}
	})
}

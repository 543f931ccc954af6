package token

import (
	"strings"
	"testing"
)

func TestOpaqueCodes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, text string
		kind       Kind
		wallet     string
		reason     Reason
	}{
		{"paypay code", "281234567890123456", KindOpaque, "paypay", ""},
		{"paypay too short", "2812345678901234", KindUnknown, "", Unknown},
		{"paypay pattern, wrong prefix", "291234567890123456", KindUnknown, "", Unknown},
		{"rakuten code", "RP0123ABCDEF", KindOpaque, "rakuten", ""},
		{"rakuten partial match is no match", "xRP0123ABCDEF", KindUnknown, "", Unknown},
		{"free text", "hello", KindUnknown, "", Unknown},
		{"empty", "", KindUnknown, "", Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.v.Verify([]byte(tc.text), testNow, newLedger())
			if ReasonOf(err) != tc.reason {
				t.Fatalf("Verify: %v, want %q", err, tc.reason)
			}
			if tok.Kind != tc.kind || tok.Wallet != tc.wallet {
				t.Errorf("token %+v", tok)
			}
			if tc.kind == KindOpaque {
				if !strings.HasPrefix(tok.Account, tc.wallet+":") || strings.Contains(tok.Account, tc.text) || !strings.HasPrefix(tok.ReplayKey, "opaque:") {
					t.Errorf("account %q replay %q", tok.Account, tok.ReplayKey)
				}
			}
			// An unknown text is not an invalid token: the policy's
			// unknownToken decides it, not invalidToken.
			wantInvalid := string(tc.reason)
			if tc.reason == Unknown {
				wantInvalid = ""
			}
			if p := PaymentFor(tok, err); p.Kind != string(tc.kind) || p.Invalid != wantInvalid {
				t.Errorf("payment %+v, want kind %s invalid %q", p, tc.kind, wantInvalid)
			}
		})
	}
}

func TestOpaqueReplay(t *testing.T) {
	f := newFixture(t)
	l := newLedger()
	tok, err := f.v.Verify([]byte("281234567890123456"), testNow, l)
	if err != nil {
		t.Fatal(err)
	}
	l.record(tok)
	if _, err := f.v.Verify([]byte("281234567890123456"), testNow, l); ReasonOf(err) != Replayed {
		t.Fatalf("second use: %v", err)
	}
	if _, err := f.v.Verify([]byte("281234567890123457"), testNow, l); err != nil {
		t.Fatalf("another code: %v", err)
	}
}

func TestClassify(t *testing.T) {
	emv, _ := MintEMV(EMVSample{PAN: "4111111111111111", ATC: 1})
	tests := []struct {
		text string
		want Kind
	}{
		{"PG1:BB8", KindPG1},
		{emv, KindEMV},
		{emvSamples[0].text, KindEMV},
		{"281234567890123456", KindUnknown}, // base64-shaped digits are not EMV
		{"pg1:BB8", KindUnknown},
		{"", KindUnknown},
	}
	for _, tc := range tests {
		if got := Classify([]byte(tc.text)); got != tc.want {
			t.Errorf("Classify(%q) = %s, want %s", tc.text, got, tc.want)
		}
	}
}

func TestPaymentForNil(t *testing.T) {
	p := PaymentFor(nil, &Error{Reason: BadSignature, Msg: "x"})
	if p.Kind != "unknown" || p.Invalid != "bad_signature" || p.Account != "" {
		t.Errorf("%+v", p)
	}
}

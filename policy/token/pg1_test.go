package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/posguard/posguard/policy"
)

// memLedger is an in-memory Ledger, as the agent's bbolt one behaves.
type memLedger struct {
	seen map[string]bool
	atc  map[string]uint32
}

func newLedger() *memLedger {
	return &memLedger{seen: map[string]bool{}, atc: map[string]uint32{}}
}

func (l *memLedger) Seen(k string) bool { return l.seen[k] }
func (l *memLedger) LastATC(a string) (uint32, bool) {
	v, ok := l.atc[a]
	return v, ok
}

// record does what the agent does after an accepted token.
func (l *memLedger) record(tok *Token) {
	l.seen[tok.ReplayKey] = true
	if tok.HasATC {
		l.atc[tok.Account] = tok.ATC
	}
}

const testIssuer = "posguard-wallet"

var testNow = time.Unix(1_700_000_000, 0).UTC()

type fixture struct {
	ed, ed2, old, stranger ed25519.PrivateKey
	ec                     *ecdsa.PrivateKey
	tokens                 *policy.Tokens
	v                      *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	gen := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	f := &fixture{ed: gen(), ed2: gen(), old: gen(), stranger: gen()}
	var err error
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	f.tokens = &policy.Tokens{
		Issuers: []policy.Issuer{{Name: testIssuer, Keys: []policy.IssuerKey{
			{KID: "ed1", Alg: "EdDSA", Public: f.ed.Public()},
			{KID: "ed2", Alg: "EdDSA", Public: f.ed2.Public()},
			{KID: "ec1", Alg: "ES256", Public: f.ec.Public()},
			{KID: "old", Alg: "EdDSA", Public: f.old.Public(), NotAfter: testNow.Add(-time.Hour)},
		}}},
		Opaque: []policy.OpaqueWallet{
			{Name: "paypay", Pattern: `28[0-9]{16}`, MinLength: 18, MaxLength: 18},
			{Name: "rakuten", Pattern: `RP[0-9A-Z]{10,20}`},
		},
		MaxAge:    policy.Duration(5 * time.Minute),
		ClockSkew: policy.Duration(30 * time.Second),
	}
	f.v = NewVerifier(f.tokens, []byte("chain secret"))
	return f
}

func baseClaims() Claims {
	return Claims{
		Issuer:       testIssuer,
		Subject:      "acct-0001",
		IssuedAt:     testNow.Add(-10 * time.Second),
		ExpiresAt:    testNow.Add(50 * time.Second),
		ID:           []byte("0123456789abcdef"),
		DeviceID:     []byte{0xde, 0xad, 0xbe, 0xef},
		DeviceSince:  testNow.Add(-2 * time.Hour),
		AccountSince: testNow.Add(-72 * time.Hour),
		TopUpAt:      testNow.Add(-30 * time.Minute),
		TopUpAmount:  90000,
		ForeignLogin: true,
	}
}

func mint(t testing.TB, key crypto.Signer, alg, kid string, c Claims) []byte {
	t.Helper()
	s, err := Mint(key, alg, kid, c)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return []byte(s)
}

// craft builds a PG1 token by hand, so tests can make the headers and
// payloads a correct minter never would.
type crafted struct {
	prot     map[any]any
	unprot   map[any]any
	payload  []byte
	untagged bool
}

func craft(t testing.TB, key ed25519.PrivateKey, c crafted) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	prot, err := em.Marshal(c.prot)
	if err != nil {
		t.Fatal(err)
	}
	tbs, err := em.Marshal([]any{"Signature1", prot, []byte{}, c.payload})
	if err != nil {
		t.Fatal(err)
	}
	unprot := c.unprot
	if unprot == nil {
		unprot = map[any]any{}
	}
	arr := []any{prot, unprot, c.payload, ed25519.Sign(key, tbs)}
	var v any = cbor.Tag{Number: 18, Content: arr}
	if c.untagged {
		v = arr
	}
	raw, err := em.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(PG1Prefix + Base45Encode(raw))
}

func claimsPayload(t testing.TB, over map[any]any) []byte {
	t.Helper()
	m := map[any]any{
		1: testIssuer, 2: "acct-0001",
		6: testNow.Add(-10 * time.Second).Unix(), 4: testNow.Add(50 * time.Second).Unix(),
		7: []byte("0123456789abcdef"),
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := cbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		alg, kid string
		key      crypto.Signer
	}{{"EdDSA", "ed1", f.ed}, {"ES256", "ec1", f.ec}} {
		t.Run(tc.alg, func(t *testing.T) {
			text := mint(t, tc.key, tc.alg, tc.kid, baseClaims())
			tok, err := f.v.Verify(text, testNow, newLedger())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := policy.Payment{
				Kind: "pg1", Issuer: testIssuer, Account: "acct-0001",
				TokenID:      "30313233343536373839616263646566",
				DeviceID:     "deadbeef",
				DeviceSince:  testNow.Add(-2 * time.Hour),
				AccountSince: testNow.Add(-72 * time.Hour),
				TopUpAt:      testNow.Add(-30 * time.Minute),
				TopUpAmount:  90000, ForeignLogin: true,
			}
			if got := PaymentFor(tok, err); got != want {
				t.Errorf("payment\n got %+v\nwant %+v", got, want)
			}
			if tok.ReplayKey != "pg1:30313233343536373839616263646566" || tok.KID != tc.kid || tok.Alg != tc.alg {
				t.Errorf("replay key %q kid %q alg %q", tok.ReplayKey, tok.KID, tok.Alg)
			}
			if !tok.IssuedAt.Equal(testNow.Add(-10*time.Second)) || !tok.ExpiresAt.Equal(testNow.Add(50*time.Second)) {
				t.Errorf("times iat %v exp %v", tok.IssuedAt, tok.ExpiresAt)
			}
		})
	}
}

func TestMintRandomID(t *testing.T) {
	f := newFixture(t)
	c := baseClaims()
	c.ID = nil
	a, _ := f.v.Verify(mint(t, f.ed, "EdDSA", "ed1", c), testNow, nil)
	b, _ := f.v.Verify(mint(t, f.ed, "EdDSA", "ed1", c), testNow, nil)
	if a == nil || b == nil || len(a.TokenID) != 32 || a.TokenID == b.TokenID {
		t.Fatalf("random cti: %+v %+v", a, b)
	}
}

func TestVerifyRejections(t *testing.T) {
	f := newFixture(t)
	good := mint(t, f.ed, "EdDSA", "ed1", baseClaims())
	withClaims := func(mod func(*Claims)) []byte {
		c := baseClaims()
		mod(&c)
		return mint(t, f.ed, "EdDSA", "ed1", c)
	}
	edProt := map[any]any{1: -8, 4: []byte("ed1")}

	tampered := func() []byte {
		raw, err := Base45Decode(good[len(PG1Prefix):])
		if err != nil {
			t.Fatal(err)
		}
		raw = bytes.Replace(raw, []byte("acct-0001"), []byte("acct-0002"), 1)
		return []byte(PG1Prefix + Base45Encode(raw))
	}()
	// A map with claim 1 twice, hand-encoded: cbor.Marshal would never.
	dup := append([]byte{0xA6}, claimsPayload(t, nil)[1:]...)
	dup = append(dup, 0x01, 0x63, 'e', 'v', 'e')

	ledger := newLedger()
	ledger.seen["pg1:30313233343536373839616263646566"] = true

	tests := []struct {
		name    string
		text    []byte
		ledger  Ledger
		want    Reason
		wantMsg string
	}{
		{"tampered payload", tampered, nil, BadSignature, "does not verify"},
		{"swapped kid", mint(t, f.ed, "EdDSA", "ed2", baseClaims()), nil, BadSignature, `key "ed2"`},
		{"wrong key", mint(t, f.stranger, "EdDSA", "ed1", baseClaims()), nil, BadSignature, "does not verify"},
		{"unknown kid", mint(t, f.ed, "EdDSA", "nope", baseClaims()), nil, UnknownKey, `no key "nope"`},
		{"kid only unprotected", craft(t, f.ed, crafted{prot: map[any]any{1: -8}, unprot: map[any]any{4: []byte("ed1")}, payload: claimsPayload(t, nil)}), nil, UnknownKey, "unprotected"},
		{"unknown issuer", withClaims(func(c *Claims) { c.Issuer = "evil-wallet" }), nil, UnknownIssuer, `"evil-wallet"`},
		{"alg only unprotected", craft(t, f.ed, crafted{prot: map[any]any{4: []byte("ed1")}, unprot: map[any]any{1: -8}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "unprotected"},
		{"alg in both headers", craft(t, f.ed, crafted{prot: edProt, unprot: map[any]any{1: -8}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "unprotected"},
		{"no alg", craft(t, f.ed, crafted{prot: map[any]any{4: []byte("ed1")}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "no alg"},
		{"alg none", craft(t, f.ed, crafted{prot: map[any]any{1: "none", 4: []byte("ed1")}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "none"},
		{"alg reserved 0", craft(t, f.ed, crafted{prot: map[any]any{1: 0, 4: []byte("ed1")}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "not key"},
		{"alg not the key's", craft(t, f.ed, crafted{prot: map[any]any{1: -7, 4: []byte("ed1")}, payload: claimsPayload(t, nil)}), nil, AlgMismatch, "ES256"},
		{"retired key", mint(t, f.old, "EdDSA", "old", baseClaims()), nil, Expired, "retired"},
		{"expired", withClaims(func(c *Claims) { c.ExpiresAt = testNow.Add(-31 * time.Second) }), nil, Expired, "expired at"},
		{"not yet valid", withClaims(func(c *Claims) { c.IssuedAt = testNow.Add(time.Minute) }), nil, NotYetValid, "future"},
		{"too old", withClaims(func(c *Claims) {
			c.IssuedAt, c.ExpiresAt = testNow.Add(-6*time.Minute), testNow.Add(time.Hour)
		}), nil, TooOld, "maximum age"},
		{"replayed", good, ledger, Replayed, "already used"},
		{"oversized", []byte(PG1Prefix + strings.Repeat("A", MaxTextLen)), nil, TooLong, "more than 1024"},
		{"duplicate claim keys", craft(t, f.ed, crafted{prot: edProt, payload: dup}), nil, Malformed, "duplicate"},
		{"duplicate header keys", func() []byte {
			raw, _ := Base45Decode(craft(t, f.ed, crafted{prot: map[any]any{1: -8, 5: []byte("ed1")}, payload: claimsPayload(t, nil)})[4:])
			// turn label 5 into a second label 1 inside the protected bstr
			i := bytes.Index(raw, []byte{0x05, 0x43, 'e', 'd', '1'})
			raw[i] = 0x01
			return []byte(PG1Prefix + Base45Encode(raw))
		}(), nil, Malformed, "duplicate"},
		{"iat is text", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{6: "yesterday"})}), nil, Malformed, "iat must be an integer"},
		{"iat is null", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{6: cbor.RawMessage{0xF6}})}), nil, Malformed, "iat must be an integer"},
		{"fl is int", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{"fl": 1})}), nil, Malformed, "fl must be true or false"},
		{"sub is bytes", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{2: []byte("acct")})}), nil, Malformed, "sub must be a text"},
		{"cti too short", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{7: []byte("1234")})}), nil, Malformed, "cti is 4 bytes"},
		{"no cti", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{7: nil})}), nil, Malformed, "cti is missing"},
		{"critical header", craft(t, f.ed, crafted{prot: map[any]any{1: -8, 4: []byte("ed1"), 2: []any{99}, 99: 1}, payload: claimsPayload(t, nil)}), nil, Malformed, "critical"},
		{"payload not a map", craft(t, f.ed, crafted{prot: edProt, payload: []byte{0x80}}), nil, Malformed, "not a CBOR map"},
		{"bad base45", []byte("PG1:bb8"), nil, Malformed, "not base45"},
		{"empty", []byte("PG1:"), nil, Malformed, "empty"},
		{"not COSE", []byte(PG1Prefix + Base45Encode([]byte{0xA0})), nil, Malformed, "not a COSE_Sign1"},
		{"trailing CBOR", func() []byte {
			raw, _ := Base45Decode(good[4:])
			return []byte(PG1Prefix + Base45Encode(append(raw, 0x00)))
		}(), nil, Malformed, "extraneous data"},
		{"wrong prefix", []byte("PG2:" + string(good[4:])), nil, Unknown, "no PG1 token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.v.Verify(tc.text, testNow, tc.ledger)
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Verify error = %v (%T), want *Error %s", err, err, tc.want)
			}
			if te.Reason != tc.want || !strings.Contains(te.Msg, tc.wantMsg) {
				t.Errorf("got %s %q, want %s mentioning %q", te.Reason, te.Msg, tc.want, tc.wantMsg)
			}
			wantInvalid := string(tc.want)
			if tc.want == Unknown {
				wantInvalid = "" // decided by failMode.unknownToken
			}
			if p := PaymentFor(tok, err); p.Invalid != wantInvalid {
				t.Errorf("PaymentFor Invalid = %q, want %q", p.Invalid, wantInvalid)
			}
			if tok == nil || tok.Kind != Classify(tc.text) {
				t.Fatalf("token %+v, want one of kind %s", tok, Classify(tc.text))
			}
			// Claims are only handed back once the signature has checked out.
			switch {
			case tc.name == "retired key" || tc.want == Malformed || tc.want == TooLong || tc.want == UnknownIssuer ||
				tc.want == UnknownKey || tc.want == AlgMismatch || tc.want == BadSignature:
				if tok.Account != "" || tok.Subject != "" || tok.ReplayKey != "" {
					t.Errorf("unverified claims returned: %+v", tok)
				}
			case tc.want == Unknown:
			default:
				if tok.Account != "acct-0001" || tok.ReplayKey == "" {
					t.Errorf("verified token without account: %+v", tok)
				}
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	edProt := map[any]any{1: -8, 4: []byte("ed1")}
	tests := []struct {
		name string
		text []byte
	}{
		{"untagged COSE_Sign1", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, nil), untagged: true})},
		{"tagged COSE_Sign1", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, nil)})},
		{"unknown extra claims", craft(t, f.ed, crafted{prot: edProt, payload: claimsPayload(t, map[any]any{3: "aud", "xx": []any{1, 2}})})},
		{"expired within clock skew", func() []byte {
			c := baseClaims()
			c.ExpiresAt = testNow.Add(-20 * time.Second)
			return mint(t, f.ed, "EdDSA", "ed1", c)
		}()},
		{"issued slightly ahead within skew", func() []byte {
			c := baseClaims()
			c.IssuedAt = testNow.Add(20 * time.Second)
			return mint(t, f.ed, "EdDSA", "ed1", c)
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.v.Verify(tc.text, testNow, newLedger())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tok.Account != "acct-0001" || tok.Issuer != testIssuer {
				t.Errorf("token %+v", tok)
			}
		})
	}
}

func TestReplayAfterRecord(t *testing.T) {
	f := newFixture(t)
	l := newLedger()
	text := mint(t, f.ed, "EdDSA", "ed1", baseClaims())
	tok, err := f.v.Verify(text, testNow, l)
	if err != nil {
		t.Fatal(err)
	}
	l.record(tok)
	if _, err := f.v.Verify(text, testNow, l); ReasonOf(err) != Replayed {
		t.Fatalf("second use: %v, want replayed", err)
	}
	// Decode and a nil ledger do not judge replays: that is inspect.
	if _, err := f.v.Verify(text, testNow, nil); err != nil {
		t.Fatalf("nil ledger: %v", err)
	}
}

func TestDecodeWithoutPolicy(t *testing.T) {
	f := newFixture(t)
	tok, err := Decode(mint(t, f.ec, "ES256", "ec1", baseClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Kind != KindPG1 || tok.Subject != "acct-0001" || tok.KID != "ec1" || tok.Alg != "ES256" || tok.TopUpAmount != 90000 {
		t.Errorf("decoded %+v", tok)
	}
	if tok.Account != "" || tok.ReplayKey != "" {
		t.Errorf("Decode must not set account or replay key: %+v", tok)
	}
}

func TestUnusablePolicyKey(t *testing.T) {
	f := newFixture(t)
	tokens := *f.tokens
	tokens.Issuers = []policy.Issuer{{Name: testIssuer, Keys: []policy.IssuerKey{
		{KID: "ed1", Alg: "EdDSA", Public: f.ec.Public()}, // wrong key type for the alg
	}}}
	v := NewVerifier(&tokens, nil)
	_, err := v.Verify(mint(t, f.ed, "EdDSA", "ed1", baseClaims()), testNow, nil)
	if ReasonOf(err) != UnknownKey {
		t.Fatalf("got %v, want unknown_key", err)
	}
}

func FuzzDecodePG1(f *testing.F) {
	fx := newFixture(f)
	f.Add(mint(f, fx.ed, "EdDSA", "ed1", baseClaims()))
	f.Add(mint(f, fx.ec, "ES256", "ec1", baseClaims()))
	f.Add([]byte("PG1:"))
	f.Add([]byte("PG1:BB8"))
	f.Fuzz(func(t *testing.T, text []byte) {
		tok, err := fx.v.Verify(text, testNow, newLedger())
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Msg == "" || te.Reason == "" {
				t.Fatalf("rejection without reason: %v", err)
			}
			return
		}
		if tok == nil || tok.Account == "" || tok.ReplayKey == "" {
			t.Fatalf("accepted token without account: %+v", tok)
		}
		if _, err := Decode(text); err != nil {
			t.Fatalf("Verify accepted what Decode rejects: %v", err)
		}
	})
}

func BenchmarkVerifyPG1EdDSA(b *testing.B) {
	f := newFixture(b)
	text := mint(b, f.ed, "EdDSA", "ed1", baseClaims())
	l := newLedger()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(text, testNow, l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPG1ES256(b *testing.B) {
	f := newFixture(b)
	text := mint(b, f.ec, "ES256", "ec1", baseClaims())
	l := newLedger()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(text, testNow, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Baseline is the bare signature check, to show how much of
// BenchmarkVerifyPG1EdDSA is the signature and how much the decoding.
func BenchmarkEd25519Baseline(b *testing.B) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 200)
	sig := ed25519.Sign(k, msg)
	pub := k.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	texts := [][]byte{
		mint(t, f.ed, "EdDSA", "ed1", baseClaims()),
		mint(t, f.ec, "ES256", "ec1", baseClaims()),
		[]byte(emvSamples[1].text),
		[]byte("281234567890123456"),
	}
	done := make(chan error)
	for _, text := range texts {
		go func() {
			var err error
			for range 20 {
				if _, e := f.v.Verify(text, testNow, nil); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range texts {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

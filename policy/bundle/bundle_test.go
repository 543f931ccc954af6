package bundle_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/wire"
)

// testEd25519 is a fixed test key, so Ed25519 bundles (deterministic
// signatures) can be golden files.
func testEd25519() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

type keys struct {
	ed, ed2 ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	trusted []bundle.TrustedKey
}

func newKeys(t testing.TB) keys {
	_, ed2, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := keys{ed: testEd25519(), ed2: ed2, ec: ec}
	k.trusted = []bundle.TrustedKey{
		{KID: "hq-ed", Alg: bundle.AlgEdDSA, Public: k.ed.Public()},
		{KID: "hq-ec", Alg: bundle.AlgES256, Public: k.ec.Public()},
		// A key declared with the wrong algorithm: bundles naming it are
		// refused whatever they claim.
		{KID: "hq-confused", Alg: bundle.AlgES256, Public: k.ed2.Public()},
	}
	return k
}

func mustSign(t testing.TB, s crypto.Signer, alg, kid, ct string, payload []byte) []byte {
	t.Helper()
	b, err := bundle.Sign(s, alg, kid, ct, payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return b
}

// craft builds a COSE_Sign1 by hand (through the CBOR library) so tests
// can produce shapes bundle.Sign never would.
func craft(t testing.TB, protected []byte, unprotected map[any]any, payload, sig []byte, tagged bool) []byte {
	t.Helper()
	content := []any{protected, unprotected, payload, sig}
	var v any = content
	if tagged {
		v = cbor.Tag{Number: 18, Content: content}
	}
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedWith signs protected||payload through go-cose with extra protected
// labels, for header-shape tests that need a valid signature.
func signedWith(t testing.TB, key crypto.Signer, extra map[any]any, unprotected map[any]any) []byte {
	t.Helper()
	s, err := cose.NewSigner(cose.AlgorithmEdDSA, key)
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte("hq-ed")
	msg.Headers.Protected[cose.HeaderLabelContentType] = bundle.TypeDenylistDelta
	for k, v := range extra {
		msg.Headers.Protected[k] = v
	}
	for k, v := range unprotected {
		msg.Headers.Unprotected[k] = v
	}
	msg.Payload = []byte(`{}`)
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignVerify(t *testing.T) {
	k := newKeys(t)
	payload := []byte(`{"seq":1,"add":["a"],"issuedAt":"2019-07-03T10:15:00Z"}`)
	for _, tt := range []struct {
		name   string
		signer crypto.Signer
		alg    string
		kid    string
		ct     string
	}{
		{"EdDSA delta", k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta},
		{"ES256 delta", k.ec, bundle.AlgES256, "hq-ec", bundle.TypeDenylistDelta},
		{"EdDSA snapshot", k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistSnapshot},
		{"ES256 policy", k.ec, bundle.AlgES256, "hq-ec", bundle.TypePolicy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := mustSign(t, tt.signer, tt.alg, tt.kid, tt.ct, payload)
			got, kid, err := bundle.Verify(b, k.trusted, tt.ct)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if kid != tt.kid || !bytes.Equal(got, payload) {
				t.Errorf("Verify = %q, %q; want %q, %q", got, kid, payload, tt.kid)
			}
		})
	}
}

func TestSignRefusesMisuse(t *testing.T) {
	k := newKeys(t)
	for name, f := range map[string]func() ([]byte, error){
		"unknown type":    func() ([]byte, error) { return bundle.Sign(k.ed, bundle.AlgEdDSA, "k", "text/plain", nil) },
		"empty kid":       func() ([]byte, error) { return bundle.Sign(k.ed, bundle.AlgEdDSA, "", bundle.TypePolicy, nil) },
		"alg not the key": func() ([]byte, error) { return bundle.Sign(k.ed, bundle.AlgES256, "k", bundle.TypePolicy, nil) },
		"unknown alg":     func() ([]byte, error) { return bundle.Sign(k.ed, "RS256", "k", bundle.TypePolicy, nil) },
		"too big": func() ([]byte, error) {
			return bundle.Sign(k.ed, bundle.AlgEdDSA, "k", bundle.TypePolicy, make([]byte, bundle.MaxPolicyBytes))
		},
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: Sign succeeded", name)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	k := newKeys(t)
	payload := []byte(`{}`)
	good := mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta, payload)

	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1

	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(good); err != nil {
		t.Fatal(err)
	}
	// MarshalProtected gives the bstr-wrapped header; craft wants the map
	// bytes inside it.
	wrapped, err := msg.Headers.MarshalProtected()
	if err != nil {
		t.Fatal(err)
	}
	var protected []byte
	if err := cbor.Unmarshal(wrapped, &protected); err != nil {
		t.Fatal(err)
	}
	// The crafted copy of the good bundle must verify, or the variants
	// below would fail for the wrong reason.
	if _, _, err := bundle.Verify(craft(t, protected, map[any]any{}, payload, msg.Signature, true), k.trusted, bundle.TypeDenylistDelta); err != nil {
		t.Fatalf("crafted copy of a good bundle refused: %v", err)
	}
	// Duplicate alg label in the protected header: a1 01 27 01 27 with kid
	// and content type after it, written out so the map really has a
	// duplicate key.
	dup := []byte{0xa4, 0x01, 0x27, 0x01, 0x27, 0x04, 0x45, 'h', 'q', '-', 'e', 'd', 0x03}
	ct, _ := cbor.Marshal(bundle.TypeDenylistDelta)
	dup = append(dup, ct...)

	tests := []struct {
		name   string
		bundle []byte
		want   string
		reason bundle.Reason
	}{
		{"garbage", []byte("not cose"), "", bundle.Malformed},
		{"empty", nil, "", bundle.Malformed},
		{"plain JSON, unsigned", []byte(`{"seq":1}`), "", bundle.Malformed},
		{"untagged", craft(t, protected, map[any]any{}, payload, msg.Signature, false), "tagged", bundle.Malformed},
		{"trailing bytes", append(bytes.Clone(good), 0x00), "", bundle.Malformed},
		{"detached payload", craft(t, protected, map[any]any{}, nil, msg.Signature, true), "detached", bundle.Malformed},
		{"unprotected kid", craft(t, protected, map[any]any{int64(4): []byte("hq-ed")}, payload, msg.Signature, true), "unprotected", bundle.Malformed},
		{"signed unprotected entry", signedWith(t, k.ed, nil, map[any]any{int64(4): []byte("x")}), "unprotected", bundle.Malformed},
		{"extra protected label", signedWith(t, k.ed, map[any]any{int64(99): "x"}, nil), "label", bundle.Malformed},
		{"duplicate protected key", craft(t, dup, map[any]any{}, payload, msg.Signature, true), "duplicate", bundle.Malformed},
		{"flipped signature", flipped, "", bundle.BadSignature},
		{"unknown kid", mustSign(t, k.ed, bundle.AlgEdDSA, "someone", bundle.TypeDenylistDelta, payload), "someone", bundle.UnknownKey},
		{"other key same kid", mustSign(t, k.ed2, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta, payload), "", bundle.BadSignature},
		{"alg not the key's", mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ec", bundle.TypeDenylistDelta, payload), "", bundle.AlgMismatch},
		{"key declared wrongly", mustSign(t, k.ed2, bundle.AlgEdDSA, "hq-confused", bundle.TypeDenylistDelta, payload), "", bundle.AlgMismatch},
		{"snapshot sent as delta", mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistSnapshot, payload), "snapshot", bundle.WrongType},
		{"policy sent as delta", mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypePolicy, payload), "policy", bundle.WrongType},
		{"oversized", make([]byte, bundle.MaxDeltaBytes+1), "limit", bundle.Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := bundle.Verify(tt.bundle, k.trusted, bundle.TypeDenylistDelta)
			if err == nil {
				t.Fatalf("accepted, payload %q", got)
			}
			if r := bundle.ReasonOf(err); r != tt.reason {
				t.Errorf("reason %q, want %q (%v)", r, tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
	if _, _, err := bundle.Verify(good, k.trusted, "text/plain"); err == nil {
		t.Error("Verify accepted an unknown wanted type")
	}
}

func loadPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.LoadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyPolicy(t *testing.T) {
	k := newKeys(t)
	p := loadPolicy(t) // v5, stores s042 and s043, valid July 2019
	july := time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)
	signed := func(mod func(*policy.Policy)) []byte {
		q := *p
		mod(&q)
		b, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", &q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	same := func(*policy.Policy) {}
	allStores := func(q *policy.Policy) { q.Scope.Stores = nil }
	delta := mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta, mustCanonical(t, p))
	notAPolicy := mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypePolicy, []byte(`{"kind":"Policy"}`))
	forged := mustSign(t, k.ed2, bundle.AlgEdDSA, "hq-ed", bundle.TypePolicy, mustCanonical(t, p))

	tests := []struct {
		name   string
		bundle []byte
		store  string
		active int64
		now    time.Time
		reason bundle.Reason // "" = applied
	}{
		{"newer, in scope", signed(same), "s042", 4, july, ""},
		{"first policy", signed(same), "s043", 0, july, ""},
		{"scope all", signed(allStores), "s999", 4, july, ""},
		{"other store", signed(same), "s999", 4, july, bundle.OutOfScope},
		{"same version", signed(same), "s042", 5, july, bundle.NotNewer},
		{"rollback", signed(same), "s042", 6, july, bundle.NotNewer},
		{"expired", signed(same), "s042", 4, time.Date(2019, 8, 1, 0, 0, 0, 0, time.UTC), bundle.Expired},
		{"fails validation", notAPolicy, "s042", 4, july, bundle.Invalid},
		{"expiry before issue", signed(func(q *policy.Policy) { q.Metadata.ExpiresAt = q.Metadata.IssuedAt.Add(-time.Hour) }), "s042", 4, july, bundle.Invalid},
		{"wrong key", forged, "s042", 4, july, bundle.BadSignature},
		{"unsigned canonical JSON", mustCanonical(t, p), "s042", 4, july, bundle.Malformed},
		{"delta replayed as policy", delta, "s042", 4, july, bundle.WrongType},
		{"issued within the skew", signed(func(q *policy.Policy) { q.Metadata.IssuedAt = july.Add(bundle.ClockSkew) }), "s042", 4, july, ""},
		{"issued in 2030", signed(func(q *policy.Policy) {
			q.Metadata.IssuedAt, q.Metadata.ExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
		}), "s042", 4, july, bundle.FromFuture},
		{"issued just beyond the skew", signed(func(q *policy.Policy) { q.Metadata.IssuedAt = july.Add(bundle.ClockSkew + time.Second) }), "s042", 4, july, bundle.FromFuture},
		{"version 2^63-1", rawSigned(t, k, p, func(q *policy.Policy) { q.Metadata.Version = math.MaxInt64 }), "s042", 4, july, bundle.VersionTooHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bundle.VerifyPolicy(tt.bundle, k.trusted, tt.store, tt.active, tt.now)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Metadata.Version != p.Metadata.Version || !got.Covers(tt.store) {
					t.Errorf("got %+v", got.Metadata)
				}
				return
			}
			if err == nil {
				t.Fatalf("applied v%d, want refusal %s", got.Metadata.Version, tt.reason)
			}
			if r := bundle.ReasonOf(err); r != tt.reason {
				t.Errorf("reason %q, want %q (%v)", r, tt.reason, err)
			}
		})
	}
}

// rawSigned signs a modified copy of p with bundle.Sign, bypassing
// SignPolicy's own checks, as a careless or hostile signer could.
func rawSigned(t testing.TB, k keys, p *policy.Policy, mod func(*policy.Policy)) []byte {
	q := *p
	mod(&q)
	return mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypePolicy, mustCanonical(t, &q))
}

// No single bundle can block every later update: the highest version a
// register takes at time T is T+ClockSkew in Unix seconds, and a policy
// issued after that, versioned by its issue time, replaces it.
func TestPolicyVersionCannotBlockUpdates(t *testing.T) {
	k := newKeys(t)
	p := loadPolicy(t)
	now := time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)
	sign := func(issued time.Time, version int64) []byte {
		q := *p
		q.Metadata.IssuedAt, q.Metadata.Version = issued, version
		q.Metadata.ExpiresAt = issued.Add(30 * 24 * time.Hour)
		b, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", &q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q := *p
	q.Metadata.Version = math.MaxInt64
	if _, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", &q); bundle.ReasonOf(err) != bundle.VersionTooHigh {
		t.Fatalf("SignPolicy of v2^63-1: %v, want %s", err, bundle.VersionTooHigh)
	}
	highest := now.Add(bundle.ClockSkew)
	first, err := bundle.VerifyPolicy(sign(highest, highest.Unix()), k.trusted, "s042", 0, now)
	if err != nil {
		t.Fatalf("the highest version allowed now: %v", err)
	}
	above := rawSigned(t, k, p, func(q *policy.Policy) { q.Metadata.IssuedAt, q.Metadata.Version = highest, highest.Unix()+1 })
	if _, err := bundle.VerifyPolicy(above, k.trusted, "s042", 0, now); bundle.ReasonOf(err) != bundle.VersionTooHigh {
		t.Fatalf("one above issuedAt: %v, want %s", err, bundle.VersionTooHigh)
	}
	later := now.Add(time.Hour)
	next, err := bundle.VerifyPolicy(sign(later, later.Unix()), k.trusted, "s042", first.Metadata.Version, later)
	if err != nil {
		t.Fatalf("a policy issued an hour later: %v", err)
	}
	if next.Metadata.Version <= first.Metadata.Version {
		t.Fatalf("v%d did not replace v%d", next.Metadata.Version, first.Metadata.Version)
	}
}

func mustCanonical(t testing.TB, p *policy.Policy) []byte {
	b, err := p.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The golden bundle pins the envelope: Ed25519 signatures are
// deterministic, so the same key and policy give the same bytes.
func TestGoldenPolicyBundle(t *testing.T) {
	k := newKeys(t)
	b, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", loadPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "policy.cose")
	golden.Check(t, path, b)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := bundle.VerifyPolicy(want, k.trusted, "s042", 0, time.Date(2019, 7, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("golden bundle refused: %v", err)
	}
	if p.Metadata.Name != "bundle-test" {
		t.Errorf("name %q", p.Metadata.Name)
	}
}

func TestDenylistBundles(t *testing.T) {
	k := newKeys(t)
	at := time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)
	d := wire.Delta{Epoch: "e1", Seq: 3, Add: []string{"acct-1"}, IssuedAt: at}
	db, err := bundle.SignDelta(k.ec, bundle.AlgES256, "hq-ec", d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bundle.VerifyDelta(db, k.trusted)
	if err != nil || got.Seq != 3 || got.Add[0] != "acct-1" {
		t.Fatalf("VerifyDelta = %+v, %v", got, err)
	}
	s := wire.Snapshot{Epoch: "e1", Seq: 3, Accounts: []string{"acct-1", "acct-2"}, IssuedAt: at}
	sb, err := bundle.SignSnapshot(k.ed, bundle.AlgEdDSA, "hq-ed", s)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := bundle.VerifySnapshot(sb, k.trusted)
	if err != nil || len(gs.Accounts) != 2 {
		t.Fatalf("VerifySnapshot = %+v, %v", gs, err)
	}
	if _, err := bundle.VerifyDelta(sb, k.trusted); bundle.ReasonOf(err) != bundle.WrongType {
		t.Errorf("snapshot as delta: %v", err)
	}
	if _, err := bundle.VerifySnapshot(db, k.trusted); bundle.ReasonOf(err) != bundle.WrongType {
		t.Errorf("delta as snapshot: %v", err)
	}
	bad := mustSign(t, k.ed, bundle.AlgEdDSA, "hq-ed", bundle.TypeDenylistDelta, []byte(`{"seq":0}`))
	if _, err := bundle.VerifyDelta(bad, k.trusted); bundle.ReasonOf(err) != bundle.Invalid {
		t.Errorf("invalid delta payload: %v", err)
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeyFiles(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		kid  string
		priv crypto.Signer
		alg  string
	}{{"hq-ed", k.ed, bundle.AlgEdDSA}, {"hq-ec", k.ec, bundle.AlgES256}} {
		der, err := x509.MarshalPKCS8PrivateKey(tt.priv)
		if err != nil {
			t.Fatal(err)
		}
		keyPath := writePEM(t, dir, tt.kid+".key", "PRIVATE KEY", der, 0o600)
		pubDER, err := x509.MarshalPKIXPublicKey(tt.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		pubPath := writePEM(t, dir, tt.kid+".pub.pem", "PUBLIC KEY", pubDER, 0o644)

		signer, alg, err := keyfile.Load(keyPath)
		if err != nil || alg != tt.alg {
			t.Fatalf("keyfile.Load = %s, %v", alg, err)
		}
		tk, err := bundle.LoadTrustedKey(tt.kid, pubPath)
		if err != nil || tk.Alg != tt.alg {
			t.Fatalf("LoadTrustedKey = %+v, %v", tk, err)
		}
		b := mustSign(t, signer, alg, tt.kid, bundle.TypePolicy, []byte(`{}`))
		if _, _, err := bundle.Verify(b, []bundle.TrustedKey{tk}, bundle.TypePolicy); err != nil {
			t.Errorf("%s: sign with loaded key, verify with loaded public key: %v", tt.kid, err)
		}
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, _ := x509.MarshalPKIXPublicKey(p384.Public())
	edDER, _ := x509.MarshalPKIXPublicKey(k.ed.Public())
	for name, f := range map[string]func() error{
		"missing file": func() error { _, err := bundle.LoadTrustedKey("x", filepath.Join(dir, "nope")); return err },
		"P-384 key": func() error {
			_, err := bundle.ParseTrustedKey("x", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p384DER}))
			return err
		},
		"private block": func() error {
			_, err := bundle.ParseTrustedKey("x", []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
			return err
		},
		"empty kid": func() error {
			_, err := bundle.ParseTrustedKey("", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}))
			return err
		},
		"trailing junk": func() error {
			_, err := bundle.ParseTrustedKey("x", append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}), "junk"...))
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := newKeys(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, kid, err := bundle.Verify(data, k.trusted, bundle.TypePolicy)
		if err != nil {
			if bundle.ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		// Only the seed signed with the fixed test key can get here.
		if kid != "hq-ed" || payload == nil {
			t.Fatalf("accepted kid %q payload %q", kid, payload)
		}
	})
}

func BenchmarkVerifyPolicy(b *testing.B) {
	k := newKeys(b)
	p := loadPolicy(b)
	bb, err := bundle.SignPolicy(k.ed, bundle.AlgEdDSA, "hq-ed", p)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2019, 7, 3, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if _, err := bundle.VerifyPolicy(bb, k.trusted, "s042", 0, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySnapshot1M(b *testing.B) {
	k := newKeys(b)
	accounts := make([]string, 1_000_000)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%064x", i)
	}
	sb, err := bundle.SignSnapshot(k.ed, bundle.AlgEdDSA, "hq-ed", wire.Snapshot{Epoch: "e1", Seq: 1, Accounts: accounts, IssuedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sb)))
	for b.Loop() {
		if _, err := bundle.VerifySnapshot(sb, k.trusted); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseTrustedKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := bundle.ParseTrustedKey("fuzz", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if alg, err := keyfile.Alg(k.Public); err != nil || alg != k.Alg {
			t.Fatalf("accepted key with alg %q, key says %q %v", k.Alg, alg, err)
		}
	})
}

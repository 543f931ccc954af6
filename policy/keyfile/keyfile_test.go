package keyfile_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posguard/posguard/policy/keyfile"
)

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, err := x509.MarshalPKIXPublicKey(ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	badDER := writePEM(t, dir, "bad-der.key", "PRIVATE KEY", []byte{0x30, 0x01, 0x00})

	for _, tc := range []struct {
		name    string
		path    string
		pub     crypto.PublicKey // the key Load must return; nil when it must fail
		alg     string
		wantErr string // substring of the error
	}{
		{"Ed25519", writePEM(t, dir, "ed.key", "PRIVATE KEY", pkcs8(t, ed)), ed.Public(), "EdDSA", ""},
		{"P-256", writePEM(t, dir, "p256.key", "PRIVATE KEY", pkcs8(t, p256)), p256.Public(), "ES256", ""},
		{"P-384 refused", writePEM(t, dir, "p384.key", "PRIVATE KEY", pkcs8(t, p384)), nil, "", "ECDSA curve P-384 is not P-256"},
		{"RSA refused", writePEM(t, dir, "rsa.key", "PRIVATE KEY", pkcs8(t, rsaKey)), nil, "", "is neither Ed25519 nor ECDSA P-256"},
		{"missing file", filepath.Join(dir, "missing.key"), nil, "", "read key: open "},
		{"garbage", garbage, nil, "", "no PEM PRIVATE KEY block"},
		{"wrong PEM type", writePEM(t, dir, "ec.key", "EC PRIVATE KEY", pkcs8(t, p256)), nil, "", "no PEM PRIVATE KEY block"},
		{"bad DER", badDER, nil, "", "key " + badDER},
		{"public key in a PRIVATE KEY block", writePEM(t, dir, "pub-as-key", "PRIVATE KEY", edPub), nil, "", "key "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, alg, err := keyfile.Load(tc.path)
			if tc.pub == nil {
				if err == nil {
					t.Fatalf("Load accepted it: %T %q", s, alg)
				}
				if s != nil || alg != "" {
					t.Errorf("Load failed but returned %T %q", s, alg)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path) {
					t.Errorf("error %q does not name %q and mention %q", err, tc.path, tc.wantErr)
				}
				return
			}
			if err != nil || alg != tc.alg {
				t.Fatalf("Load = %q, %v; want %q", alg, err, tc.alg)
			}
			if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Error("loaded key differs from the one written")
			}
		})
	}
}

func TestLoadTestdata(t *testing.T) {
	s, alg, err := keyfile.Load("../testdata/test-issuer-ed25519.key.pem")
	if err != nil || alg != "EdDSA" {
		t.Fatalf("Load = %q, %v", alg, err)
	}
	if _, ok := s.(ed25519.PrivateKey); !ok {
		t.Errorf("key is %T", s)
	}
}

func TestAlg(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name    string
		pub     crypto.PublicKey
		alg     string
		wantErr string
	}{
		{"Ed25519", edPub, "EdDSA", ""},
		{"P-256", &p256.PublicKey, "ES256", ""},
		{"P-384", &p384.PublicKey, "", "ECDSA curve P-384 is not P-256"},
		{"Ed25519 private key", ed25519.PrivateKey(make([]byte, ed25519.PrivateKeySize)), "", "key type ed25519.PrivateKey is neither Ed25519 nor ECDSA P-256"},
		{"nil", nil, "", "key type <nil> is neither Ed25519 nor ECDSA P-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alg, err := keyfile.Alg(tc.pub)
			if tc.wantErr == "" {
				if err != nil || alg != tc.alg {
					t.Fatalf("Alg = %q, %v; want %q", alg, err, tc.alg)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || alg != "" {
				t.Errorf("Alg = %q, %v; want error %q", alg, err, tc.wantErr)
			}
		})
	}
}

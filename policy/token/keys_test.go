package token

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
)

func TestKeyFilesRoundTrip(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			files, snippet, err := WriteKeyFiles(dir, testIssuer, "k-2026."+alg, alg)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(files.Private)
			if err != nil {
				t.Fatal(err)
			}
			// Windows has no Unix modes (Go reports 0666 or 0444); the
			// directory's ACL protects the key there.
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Fatalf("private key mode %v", st.Mode())
			}
			onDisk, _ := os.ReadFile(files.Issuer)
			if string(onDisk) != string(snippet) {
				t.Error("issuer file differs from the printed snippet")
			}
			if !strings.Contains(string(snippet), "publicKey: |") {
				t.Errorf("public key is not a YAML literal:\n%s", snippet)
			}
			// The snippet is the policy's tokens.issuers shape.
			var doc struct {
				Issuers []policy.Issuer `yaml:"issuers"`
			}
			if err := yaml.Unmarshal(snippet, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Issuers) != 1 || doc.Issuers[0].Name != testIssuer || len(doc.Issuers[0].Keys) != 1 {
				t.Fatalf("snippet %+v", doc)
			}
			k := &doc.Issuers[0].Keys[0]
			if k.KID != "k-2026."+alg || k.Alg != alg {
				t.Errorf("key %+v", k)
			}
			block, _ := pem.Decode([]byte(k.PublicKey))
			if block == nil {
				t.Fatal("publicKey is not PEM")
			}
			if k.Public, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
				t.Fatal(err)
			}

			signer, gotAlg, err := keyfile.Load(files.Private)
			if err != nil || gotAlg != alg {
				t.Fatalf("keyfile.Load: %q %v", gotAlg, err)
			}
			v := NewVerifier(&policy.Tokens{Issuers: doc.Issuers}, nil)
			tok, err := v.Verify(mint(t, signer, alg, k.KID, baseClaims()), testNow, nil)
			if err != nil || tok.Subject != "acct-0001" {
				t.Fatalf("verify with snippet key: %v", err)
			}

			if _, _, err := WriteKeyFiles(dir, testIssuer, "k-2026."+alg, alg); err == nil || !strings.Contains(err.Error(), "exists") {
				t.Errorf("overwrote an existing key: %v", err)
			}
		})
	}
}

func TestKeyFilesRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ iss, kid, alg, want string }{
		{testIssuer, "../evil", "EdDSA", "kid"},
		{testIssuer, ".hidden", "EdDSA", "kid"},
		{testIssuer, "k1", "RS256", "not EdDSA or ES256"},
		{"", "k1", "EdDSA", "issuer"},
	} {
		if _, _, err := WriteKeyFiles(dir, tc.iss, tc.kid, tc.alg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteKeyFiles(%q, %q, %q) = %v, want error about %q", tc.iss, tc.kid, tc.alg, err, tc.want)
		}
	}
}

package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPolicyKey(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	file := filepath.Join(dir, "hq-7.pub.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	for v, kid := range map[string]string{file: "hq-7", "other=" + file: "other"} {
		k, err := loadPolicyKey(v)
		if err != nil || k.KID != kid || k.Alg != "EdDSA" {
			t.Errorf("%s: %+v %v, want kid %s", v, k, err, kid)
		}
	}
	bad := filepath.Join(dir, "bad.pub.pem")
	os.WriteFile(bad, []byte("not a key"), 0o644)
	for v, want := range map[string]string{bad: "bad.pub.pem", filepath.Join(dir, "none.pem"): "none.pem"} {
		if _, err := loadPolicyKey(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming the file", v, err)
		}
	}
}

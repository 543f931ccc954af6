// Package keyfile reads the key files posguard uses: PEM PKCS#8 private
// keys (KID.key, as written by `posguard policy keygen` and
// `posguard token keygen`), and names the algorithm a key signs with —
// EdDSA for Ed25519, ES256 for ECDSA P-256. Other keys are refused.
package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// Alg names the algorithm a public key verifies: "EdDSA" for Ed25519,
// "ES256" for ECDSA P-256, an error for anything else.
func Alg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return "ES256", nil
		}
		return "", fmt.Errorf("ECDSA curve %s is not P-256", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("key type %T is neither Ed25519 nor ECDSA P-256", pub)
}

// Load reads a PEM PKCS#8 "PRIVATE KEY" file and returns the key with the
// algorithm it signs with (see Alg).
func Load(path string) (crypto.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read key: %w", err) // the *PathError names the file
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, "", fmt.Errorf("key %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("key %s: %T cannot sign", path, k)
	}
	alg, err := Alg(s.Public())
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", path, err)
	}
	return s, alg, nil
}

package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
)

// GenerateKey makes a new issuer signing key for alg (EdDSA or ES256).
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("algorithm %q is not EdDSA or ES256", alg)
}

// PublicKeyPEM encodes a public key as a PEM PKIX "PUBLIC KEY" block, the
// form the policy's publicKey field holds.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// IssuerYAML is the policy snippet that trusts pub as key kid of issuer iss,
// in the shape of the policy's tokens.issuers (policy.Issuer).
func IssuerYAML(iss, kid string, pub crypto.PublicKey) ([]byte, error) {
	alg, err := keyfile.Alg(pub)
	if err != nil {
		return nil, err
	}
	p, err := PublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	doc := struct {
		Issuers []policy.Issuer `yaml:"issuers"`
	}{[]policy.Issuer{{Name: iss, Keys: []policy.IssuerKey{{KID: kid, Alg: alg, PublicKey: p}}}}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode issuer snippet: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode issuer snippet: %w", err)
	}
	return buf.Bytes(), nil
}

// kidPattern keeps a kid usable as a file name.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// KeyFiles are the paths WriteKeyFiles (or WriteKeyPair: no Issuer) wrote.
type KeyFiles struct {
	Private, Public, Issuer string
}

// WriteKeyFiles generates a key for alg and writes, in dir, KID.key (PEM
// PKCS#8, mode 0600), KID.pub.pem and KID.issuer.yaml (the policy snippet).
// It refuses to overwrite an existing private key.
func WriteKeyFiles(dir, iss, kid, alg string) (KeyFiles, []byte, error) {
	if iss == "" {
		return KeyFiles{}, nil, errors.New("issuer must not be empty")
	}
	files, pub, err := WriteKeyPair(dir, kid, alg)
	if err != nil {
		return KeyFiles{}, nil, err
	}
	snippet, err := IssuerYAML(iss, kid, pub)
	if err != nil {
		return KeyFiles{}, nil, err
	}
	files.Issuer = filepath.Join(dir, kid+".issuer.yaml")
	if err := os.WriteFile(files.Issuer, snippet, 0o644); err != nil {
		return KeyFiles{}, nil, fmt.Errorf("write issuer snippet: %w", err)
	}
	return files, snippet, nil
}

// WriteKeyPair generates a key for alg and writes, in dir, KID.key (PEM
// PKCS#8, mode 0600) and KID.pub.pem: a key with no issuer, such as HQ's
// bundle-signing key. It refuses to overwrite an existing private key.
func WriteKeyPair(dir, kid, alg string) (KeyFiles, crypto.PublicKey, error) {
	if !kidPattern.MatchString(kid) {
		return KeyFiles{}, nil, fmt.Errorf("kid %q: use 1 to 64 letters, digits, '.', '_' or '-', not starting with a dot or dash", kid)
	}
	key, err := GenerateKey(alg)
	if err != nil {
		return KeyFiles{}, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyFiles{}, nil, fmt.Errorf("encode private key: %w", err)
	}
	pubPEM, err := PublicKeyPEM(key.Public())
	if err != nil {
		return KeyFiles{}, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return KeyFiles{}, nil, fmt.Errorf("create key directory: %w", err) // the *PathError names it
	}
	files := KeyFiles{
		Private: filepath.Join(dir, kid+".key"),
		Public:  filepath.Join(dir, kid+".pub.pem"),
	}
	f, err := os.OpenFile(files.Private, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return KeyFiles{}, nil, fmt.Errorf("create private key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return KeyFiles{}, nil, fmt.Errorf("write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		return KeyFiles{}, nil, fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(files.Public, []byte(pubPEM), 0o644); err != nil {
		return KeyFiles{}, nil, fmt.Errorf("write public key: %w", err)
	}
	return files, key.Public(), nil
}

package policy

import (
	"crypto"
	"regexp"
	"time"
)

// Tokens is the policy's "tokens" section: who may issue PG1 tokens, which
// opaque wallet codes are recognised, and the time tolerances. The loader
// parses PublicKey into Public and Pattern into Re, so policy/token never
// parses policy text itself.
type Tokens struct {
	Issuers   []Issuer       `yaml:"issuers" json:"issuers"`
	Opaque    []OpaqueWallet `yaml:"opaque,omitempty" json:"opaque,omitempty"`
	MaxAge    Duration       `yaml:"maxAge" json:"maxAge"`
	ClockSkew Duration       `yaml:"clockSkew" json:"clockSkew"`
}

// Issuer is one PG1 token issuer (the CWT "iss") and its keys.
type Issuer struct {
	Name string      `yaml:"iss" json:"iss"`
	Keys []IssuerKey `yaml:"keys" json:"keys"`
}

// IssuerKey is one verification key. KID is compared byte for byte with the
// COSE kid (a bstr) of the token.
type IssuerKey struct {
	KID       string    `yaml:"kid" json:"kid"`
	Alg       string    `yaml:"alg" json:"alg"`             // EdDSA | ES256
	PublicKey string    `yaml:"publicKey" json:"publicKey"` // PEM "PUBLIC KEY" (PKIX)
	NotAfter  time.Time `yaml:"notAfter,omitempty" json:"notAfter,omitzero"`

	Public crypto.PublicKey `yaml:"-" json:"-"` // ed25519.PublicKey or *ecdsa.PublicKey
}

// OpaqueWallet recognises the one-time codes of another wallet.
type OpaqueWallet struct {
	Name      string `yaml:"name" json:"name"`
	Pattern   string `yaml:"pattern" json:"pattern"` // RE2, matched against the whole text
	MinLength int    `yaml:"minLength,omitempty" json:"minLength,omitempty"`
	MaxLength int    `yaml:"maxLength,omitempty" json:"maxLength,omitempty"`

	Re *regexp.Regexp `yaml:"-" json:"-"`
}

// Duration is a time.Duration written in Go syntax ("90s", "1h") in YAML and
// JSON.
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Package bundle signs and verifies the envelopes HQ pushes to registers: a
// COSE_Sign1 (RFC 9052, go-cose) whose payload is JSON — a canonical policy,
// a denylist delta or a denylist snapshot — and whose protected header names
// the algorithm, the key and the content type. The content type is signed,
// so a delta can never be replayed as a policy.
package bundle

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/veraison/go-cose"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/wire"
)

// Content types, carried in the protected header (label 3).
const (
	TypePolicy           = "application/posguard-policy+json"
	TypeDenylistDelta    = "application/posguard-denylist-delta+json"
	TypeDenylistSnapshot = "application/posguard-denylist-snapshot+json"
	// The allowlist's own types: a signed denylist message never verifies
	// as an allowlist message, nor the other way round.
	TypeAllowlistDelta    = "application/posguard-allowlist-delta+json"
	TypeAllowlistSnapshot = "application/posguard-allowlist-snapshot+json"
)

// Algorithms, spelled as in the policy's issuer keys.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Size bounds of a whole bundle by content type: the payload bounds of
// policy.Load and agent/wire plus 4 KiB for the COSE envelope. The snapshot
// bound fits a 1,000,000-account denylist in one message (see
// wire.MaxSnapshotBytes).
const (
	envelope         = 4 << 10
	MaxPolicyBytes   = policy.MaxDocumentSize + envelope
	MaxDeltaBytes    = wire.MaxDeltaBytes + envelope
	MaxSnapshotBytes = wire.MaxSnapshotBytes + envelope
)

// MaxSize is the largest bundle accepted for a content type, 0 for an
// unknown type.
func MaxSize(contentType string) int {
	switch contentType {
	case TypePolicy:
		return MaxPolicyBytes
	case TypeDenylistDelta:
		return MaxDeltaBytes
	case TypeDenylistSnapshot:
		return MaxSnapshotBytes
	case TypeAllowlistDelta:
		return MaxDeltaBytes
	case TypeAllowlistSnapshot:
		return wire.MaxAllowSnapshotBytes + envelope
	}
	return 0
}

// Reason is why a bundle was refused; it goes into the register's status.
type Reason string

const (
	Malformed    Reason = "malformed"
	UnknownKey   Reason = "unknown_key"
	AlgMismatch  Reason = "alg_mismatch"
	BadSignature Reason = "bad_signature"
	WrongType    Reason = "wrong_type"
	// The policy reasons of VerifyPolicy.
	Invalid    Reason = "invalid"
	OutOfScope Reason = "out_of_scope"
	NotNewer   Reason = "not_newer"
	Expired    Reason = "expired"
	// FromFuture: issuedAt is beyond the register's clock plus ClockSkew.
	FromFuture Reason = "issued_in_future"
	// VersionTooHigh: the version exceeds issuedAt in Unix seconds.
	VersionTooHigh Reason = "version_too_high"
)

// Error is a refusal with its reason.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of a refusal, or "" when err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// TrustedKey is a public key a register accepts bundles from.
type TrustedKey struct {
	KID    string
	Alg    string // EdDSA | ES256
	Public crypto.PublicKey
}

func coseAlg(alg string) (cose.Algorithm, error) {
	switch alg {
	case AlgEdDSA:
		return cose.AlgorithmEdDSA, nil
	case AlgES256:
		return cose.AlgorithmES256, nil
	}
	return 0, fmt.Errorf("algorithm %q is not EdDSA or ES256", alg)
}

// Sign wraps payload in a tagged COSE_Sign1 signed by signer. alg must be
// the signer's algorithm and contentType one of the Type constants.
func Sign(signer crypto.Signer, alg, kid, contentType string, payload []byte) ([]byte, error) {
	max := MaxSize(contentType)
	if max == 0 {
		return nil, fmt.Errorf("sign bundle: unknown content type %q", contentType)
	}
	if kid == "" {
		return nil, errors.New("sign bundle: empty kid")
	}
	if payload == nil {
		payload = []byte{}
	}
	ca, err := coseAlg(alg)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	if keyAlg, err := keyfile.Alg(signer.Public()); err != nil || keyAlg != alg {
		return nil, fmt.Errorf("sign bundle: key does not sign %s (%s, %v)", alg, keyAlg, err)
	}
	s, err := cose.NewSigner(ca, signer)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(ca)
	msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte(kid)
	msg.Headers.Protected[cose.HeaderLabelContentType] = contentType
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("sign bundle: %d bytes, limit %d for %s", len(out), max, contentType)
	}
	return out, nil
}

// Verify checks a bundle against the trusted keys and returns its payload
// and the kid that signed it. It is strict: tagged COSE_Sign1 only, alg, kid
// and content type in the protected header and nothing else, an empty
// unprotected header, an attached payload, duplicate map keys refused (by
// go-cose's decoder), the size bounded by wantType, and alg equal to the
// named key's algorithm.
func Verify(bundle []byte, trusted []TrustedKey, wantType string) (payload []byte, kid string, err error) {
	max := MaxSize(wantType)
	if max == 0 {
		return nil, "", fmt.Errorf("verify bundle: unknown content type %q asked", wantType)
	}
	if len(bundle) > max {
		return nil, "", refuse(Malformed, "%d bytes, limit %d for %s", len(bundle), max, wantType)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(bundle); err != nil {
		return nil, "", refuse(Malformed, "not a tagged COSE_Sign1: %v", err)
	}
	if len(msg.Headers.Unprotected) != 0 {
		return nil, "", refuse(Malformed, "unprotected header must be empty, has %d entries", len(msg.Headers.Unprotected))
	}
	for label := range msg.Headers.Protected {
		switch label {
		case cose.HeaderLabelAlgorithm, cose.HeaderLabelKeyID, cose.HeaderLabelContentType:
		default:
			return nil, "", refuse(Malformed, "protected header label %v not allowed", label)
		}
	}
	if msg.Payload == nil {
		return nil, "", refuse(Malformed, "detached payload")
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, "", refuse(Malformed, "protected alg: %v", err)
	}
	kidBytes, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	if !ok || len(kidBytes) == 0 {
		return nil, "", refuse(Malformed, "protected kid missing or not a byte string")
	}
	ct, ok := msg.Headers.Protected[cose.HeaderLabelContentType].(string)
	if !ok {
		return nil, "", refuse(Malformed, "protected content type missing or not a text string")
	}
	kid = string(kidBytes)
	var key *TrustedKey
	for i := range trusted {
		if trusted[i].KID == kid {
			key = &trusted[i]
			break
		}
	}
	if key == nil {
		return nil, "", refuse(UnknownKey, "kid %q is not a trusted key", kid)
	}
	keyAlg, err := coseAlg(key.Alg)
	if err != nil {
		return nil, "", refuse(AlgMismatch, "trusted key %q: %v", kid, err)
	}
	if alg != keyAlg {
		return nil, "", refuse(AlgMismatch, "bundle alg %v, key %q is %s", alg, kid, key.Alg)
	}
	v, err := cose.NewVerifier(keyAlg, key.Public)
	if err != nil {
		return nil, "", refuse(AlgMismatch, "trusted key %q: %v", kid, err)
	}
	if err := msg.Verify(nil, v); err != nil {
		return nil, "", refuse(BadSignature, "key %q: %v", kid, err)
	}
	// The type is checked after the signature so wrong_type always means
	// "genuine, but sent where it does not belong".
	if ct != wantType {
		return nil, "", refuse(WrongType, "content type %q, want %q", ct, wantType)
	}
	return msg.Payload, kid, nil
}

// ParseTrustedKey reads a PEM PKIX "PUBLIC KEY" (the form
// `posguard policy keygen` writes) as key kid; the algorithm follows from
// the key type.
func ParseTrustedKey(kid string, pemText []byte) (TrustedKey, error) {
	if kid == "" {
		return TrustedKey{}, errors.New("trusted key: empty kid")
	}
	block, rest := pem.Decode(pemText)
	if block == nil || block.Type != "PUBLIC KEY" {
		return TrustedKey{}, fmt.Errorf("trusted key %q: no PEM PUBLIC KEY block", kid)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return TrustedKey{}, fmt.Errorf("trusted key %q: data after the PEM block", kid)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key %q: %w", kid, err)
	}
	alg, err := keyfile.Alg(pub)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("trusted key %q: %w", kid, err)
	}
	return TrustedKey{KID: kid, Alg: alg, Public: pub}, nil
}

// LoadTrustedKey reads ParseTrustedKey's PEM from a file.
func LoadTrustedKey(kid, path string) (TrustedKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("read trusted key: %w", err) // the *PathError names the file
	}
	k, err := ParseTrustedKey(kid, b)
	if err != nil {
		return TrustedKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

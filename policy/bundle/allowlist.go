package bundle

import (
	"crypto"
	"fmt"

	"github.com/posguard/posguard/wire"
)

// SignAllowDelta signs an allowlist delta.
func SignAllowDelta(signer crypto.Signer, alg, kid string, d wire.Delta) ([]byte, error) {
	payload, err := wire.MarshalAllowDelta(d)
	if err != nil {
		return nil, fmt.Errorf("sign allowlist delta %d: %w", d.Seq, err)
	}
	return Sign(signer, alg, kid, TypeAllowlistDelta, payload)
}

// VerifyAllowDelta verifies an allowlist delta bundle and parses its
// payload; a payload that fails wire's checks is Invalid.
func VerifyAllowDelta(bundle []byte, trusted []TrustedKey) (wire.Delta, error) {
	payload, _, err := Verify(bundle, trusted, TypeAllowlistDelta)
	if err != nil {
		return wire.Delta{}, err
	}
	d, err := wire.ParseAllowDelta(payload)
	if err != nil {
		return wire.Delta{}, &Error{Reason: Invalid, Err: err}
	}
	return d, nil
}

// SignAllowSnapshot signs an allowlist snapshot.
func SignAllowSnapshot(signer crypto.Signer, alg, kid string, s wire.Snapshot) ([]byte, error) {
	payload, err := wire.MarshalAllowSnapshot(s)
	if err != nil {
		return nil, fmt.Errorf("sign allowlist snapshot %d: %w", s.Seq, err)
	}
	return Sign(signer, alg, kid, TypeAllowlistSnapshot, payload)
}

// VerifyAllowSnapshot verifies an allowlist snapshot bundle and parses its
// payload.
func VerifyAllowSnapshot(bundle []byte, trusted []TrustedKey) (wire.Snapshot, error) {
	payload, _, err := Verify(bundle, trusted, TypeAllowlistSnapshot)
	if err != nil {
		return wire.Snapshot{}, err
	}
	s, err := wire.ParseAllowSnapshot(payload)
	if err != nil {
		return wire.Snapshot{}, &Error{Reason: Invalid, Err: err}
	}
	return s, nil
}

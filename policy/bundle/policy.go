package bundle

import (
	"crypto"
	"fmt"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// ClockSkew is how far ahead of a register's clock a policy's issuedAt may
// be: HQ's and the registers' clocks differ a little, never by years.
const ClockSkew = 5 * time.Minute

// checkVersion bounds a policy's version by its issue time. Versions only go
// up, so an unbounded version would let one signed bundle (version 2^63-1)
// make every later policy "not newer" for good. With version <= issuedAt as
// Unix seconds, and issuedAt refused beyond now+ClockSkew, no accepted
// version exceeds the acceptance time plus the skew: a policy issued later
// can always take its own issue time as version and win. Small counters
// (1, 2, 3 ...) and `version: <unix time of issue>` both satisfy it.
func checkVersion(m policy.Metadata) error {
	if limit := m.IssuedAt.Unix(); m.Version > limit {
		return refuse(VersionTooHigh, "policy %s v%d: version above issuedAt %s as Unix seconds (%d)",
			m.Name, m.Version, m.IssuedAt.Format(time.RFC3339), limit)
	}
	return nil
}

// SignPolicy signs the canonical JSON of p as a policy bundle.
func SignPolicy(signer crypto.Signer, alg, kid string, p *policy.Policy) ([]byte, error) {
	// Refuse here what every register would refuse.
	if err := checkVersion(p.Metadata); err != nil {
		return nil, fmt.Errorf("sign policy: %w", err)
	}
	payload, err := p.Canonical()
	if err != nil {
		return nil, fmt.Errorf("sign policy %s v%d: %w", p.Metadata.Name, p.Metadata.Version, err)
	}
	// Registers load the payload with policy.Load; refuse here what every
	// register would refuse there.
	if len(payload) > policy.MaxDocumentSize {
		return nil, fmt.Errorf("sign policy %s v%d: canonical JSON is %d bytes, limit %d", p.Metadata.Name, p.Metadata.Version, len(payload), policy.MaxDocumentSize)
	}
	b, err := Sign(signer, alg, kid, TypePolicy, payload)
	if err != nil {
		return nil, fmt.Errorf("sign policy %s v%d: %w", p.Metadata.Name, p.Metadata.Version, err)
	}
	return b, nil
}

// VerifyPolicy applies the rules for taking a pushed policy: the signature
// verifies against a trusted key, the policy validates, its scope covers
// store, it was not issued after now plus ClockSkew, its version is at most
// its issue time in Unix seconds (see checkVersion) and higher than active
// (no rollback, no re-apply), and it has not expired at now. Each refusal is
// an *Error with its own Reason.
func VerifyPolicy(bundle []byte, trusted []TrustedKey, store string, active int64, now time.Time) (*policy.Policy, error) {
	payload, _, err := Verify(bundle, trusted, TypePolicy)
	if err != nil {
		return nil, err
	}
	p, err := policy.Load(payload)
	if err != nil {
		return nil, &Error{Reason: Invalid, Err: err}
	}
	m := p.Metadata
	if !p.Covers(store) {
		return nil, refuse(OutOfScope, "policy %s v%d covers stores %v, not %s", m.Name, m.Version, p.Scope.Stores, store)
	}
	if m.IssuedAt.After(now.Add(ClockSkew)) {
		return nil, refuse(FromFuture, "policy %s v%d issued at %s, more than %v after this register's clock (%s)",
			m.Name, m.Version, m.IssuedAt.Format(time.RFC3339), ClockSkew, now.UTC().Format(time.RFC3339))
	}
	if err := checkVersion(m); err != nil {
		return nil, err
	}
	if m.Version <= active {
		return nil, refuse(NotNewer, "policy %s v%d is not newer than active v%d", m.Name, m.Version, active)
	}
	if p.Expired(now) {
		return nil, refuse(Expired, "policy %s v%d expired at %s", m.Name, m.Version, m.ExpiresAt.Format(time.RFC3339))
	}
	return p, nil
}

// SignDelta signs a denylist delta.
func SignDelta(signer crypto.Signer, alg, kid string, d wire.Delta) ([]byte, error) {
	payload, err := d.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sign denylist delta %d: %w", d.Seq, err)
	}
	return Sign(signer, alg, kid, TypeDenylistDelta, payload)
}

// VerifyDelta verifies a denylist delta bundle and parses its payload; a
// payload that fails wire's checks is Invalid. Sequence rules are the
// register's: it knows its current seq.
func VerifyDelta(bundle []byte, trusted []TrustedKey) (wire.Delta, error) {
	payload, _, err := Verify(bundle, trusted, TypeDenylistDelta)
	if err != nil {
		return wire.Delta{}, err
	}
	d, err := wire.ParseDelta(payload)
	if err != nil {
		return wire.Delta{}, &Error{Reason: Invalid, Err: err}
	}
	return d, nil
}

// SignSnapshot signs a denylist snapshot.
func SignSnapshot(signer crypto.Signer, alg, kid string, s wire.Snapshot) ([]byte, error) {
	payload, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sign denylist snapshot %d: %w", s.Seq, err)
	}
	return Sign(signer, alg, kid, TypeDenylistSnapshot, payload)
}

// VerifySnapshot verifies a denylist snapshot bundle and parses its payload.
func VerifySnapshot(bundle []byte, trusted []TrustedKey) (wire.Snapshot, error) {
	payload, _, err := Verify(bundle, trusted, TypeDenylistSnapshot)
	if err != nil {
		return wire.Snapshot{}, err
	}
	s, err := wire.ParseSnapshot(payload)
	if err != nil {
		return wire.Snapshot{}, &Error{Reason: Invalid, Err: err}
	}
	return s, nil
}

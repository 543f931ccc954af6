package wire

import (
	"errors"
	"fmt"
	"strings"
)

// The allowlist travels as Delta and Snapshot, like the denylist, under its
// own topics and bundle content types. Its entries are few (one per false
// positive an analyst closed) and every one expires, so its bounds are
// tighter than the denylist's.
const (
	MaxAllowlistAccounts  = 20_000
	MaxAllowSnapshotBytes = 16 << 20
)

// ValidateAllowDelta checks d as an allowlist delta: the checks of a
// denylist delta, and every added account carries a detail with its expiry.
// A removal carries none.
func ValidateAllowDelta(d *Delta) error {
	if err := d.Validate(); err != nil {
		return renamed(err)
	}
	return checkAllowDetails("allowlist delta", "add", d.Add, d.Details)
}

// ValidateAllowSnapshot checks s as an allowlist snapshot: every account
// carries a detail with its expiry.
func ValidateAllowSnapshot(s *Snapshot) error {
	if err := s.Validate(); err != nil {
		return renamed(err)
	}
	if len(s.Accounts) > MaxAllowlistAccounts {
		return fmt.Errorf("allowlist snapshot: %d accounts, limit %d", len(s.Accounts), MaxAllowlistAccounts)
	}
	return checkAllowDetails("allowlist snapshot", "accounts", s.Accounts, s.Details)
}

// renamed makes a denylist check's message speak of the allowlist: the
// payload types are shared, the lists are not, and a refusal must name the
// list it is about.
func renamed(err error) error {
	msg, ok := strings.CutPrefix(err.Error(), "denylist ")
	if !ok {
		return err
	}
	return errors.New(SubjectAllowlist + " " + msg)
}

func checkAllowDetails(what, field string, accounts []string, details map[string]ListDetail) error {
	if len(details) > len(accounts) {
		return fmt.Errorf("%s: details: %d entries for %d accounts", what, len(details), len(accounts))
	}
	listed := make(map[string]struct{}, len(accounts))
	for i, a := range accounts {
		listed[a] = struct{}{}
		d, ok := details[a]
		if !ok {
			return fmt.Errorf("%s: %s[%d] %q: no detail (every allow entry needs expiresAt)", what, field, i, a)
		}
		// Validate has checked the detail itself (ListDetail.Check).
		if d.ExpiresAt.IsZero() {
			return fmt.Errorf("%s: details[%q].expiresAt: required", what, a)
		}
	}
	for a := range details {
		if _, ok := listed[a]; !ok {
			return fmt.Errorf("%s: details[%q]: account not in %s", what, a, field)
		}
	}
	return nil
}

// MarshalAllowDelta validates d as an allowlist delta and encodes it (the
// payload to sign).
func MarshalAllowDelta(d Delta) ([]byte, error) {
	if err := ValidateAllowDelta(&d); err != nil {
		return nil, err
	}
	return d.Marshal()
}

// ParseAllowDelta decodes and validates an allowlist delta payload (after
// bundle.VerifyAllowDelta).
func ParseAllowDelta(data []byte) (Delta, error) {
	var d Delta
	if err := decodeStrict(data, MaxDeltaBytes, "allowlist delta", &d); err != nil {
		return Delta{}, err
	}
	if err := ValidateAllowDelta(&d); err != nil {
		return Delta{}, err
	}
	return d, nil
}

// MarshalAllowSnapshot validates s as an allowlist snapshot and encodes it.
func MarshalAllowSnapshot(s Snapshot) ([]byte, error) {
	if err := ValidateAllowSnapshot(&s); err != nil {
		return nil, err
	}
	return s.Marshal()
}

// ParseAllowSnapshot decodes and validates an allowlist snapshot payload.
func ParseAllowSnapshot(data []byte) (Snapshot, error) {
	var s Snapshot
	if err := decodeStrict(data, MaxAllowSnapshotBytes, "allowlist snapshot", &s); err != nil {
		return Snapshot{}, err
	}
	if err := ValidateAllowSnapshot(&s); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

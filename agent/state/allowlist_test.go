package state

import (
	"errors"
	"testing"
	"time"

	"github.com/posguard/posguard/wire"
)

func allowDetail(exp time.Time) wire.ListDetail {
	return wire.ListDetail{ExpiresAt: exp, Rule: "case:c-1", Reason: "passed an ID check at store S014"}
}

// The allowlist follows the denylist's version rules with a version of its
// own, honours expiry at the time asked (the sale's), and survives a
// reopen.
func TestAllowlist(t *testing.T) {
	s, path := newStore(t)
	exp := t0.Add(30 * 24 * time.Hour)
	d1 := wire.Delta{Epoch: "H", Seq: 1, Add: []string{"bulk-buyer"}, IssuedAt: t0,
		Details: map[string]wire.ListDetail{"bulk-buyer": allowDetail(exp)}}
	if err := s.ApplyAllowlistDelta(d1); err != nil {
		t.Fatal(err)
	}
	if got := s.AllowlistVersion(); got != (wire.ListVersion{Epoch: "H", Seq: 1}) {
		t.Fatalf("version %+v", got)
	}
	if s.DenylistVersion() != (wire.ListVersion{}) {
		t.Fatal("an allowlist delta moved the denylist's version")
	}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{t0, true}, {exp.Add(-time.Nanosecond), true}, {exp, false}, {exp.Add(time.Hour), false}} {
		if got := s.Allowlisted("bulk-buyer", tc.at); got != tc.want {
			t.Errorf("Allowlisted at %s = %v, want %v", tc.at, got, tc.want)
		}
	}
	if s.Allowlisted("someone-else", t0) {
		t.Error("an account never listed is allowlisted")
	}
	// A gap is refused naming the allowlist, and changes nothing.
	err := s.ApplyAllowlistDelta(wire.Delta{Epoch: "H", Seq: 3, Remove: []string{"bulk-buyer"}, IssuedAt: t0.Add(time.Minute)})
	var gap *GapError
	if !errors.As(err, &gap) || gap.Stale() || gap.List != wire.SubjectAllowlist {
		t.Fatalf("gap: err = %v", err)
	}
	if want := "allowlist sequence gap: at 1, got 3"; gap.Error() != want {
		t.Fatalf("gap says %q, want %q", gap.Error(), want)
	}
	// An entry without expiry never reaches the file.
	err = s.ApplyAllowlistDelta(wire.Delta{Epoch: "H", Seq: 2, Add: []string{"x"}, IssuedAt: t0.Add(time.Minute)})
	if err == nil {
		t.Fatal("allow entry without expiry applied")
	}
	// A snapshot of another epoch issued later replaces it.
	reset, err := s.ReplaceAllowlist(wire.Snapshot{Epoch: "H2", Seq: 1, Accounts: []string{"other"}, IssuedAt: t0.Add(2 * time.Minute),
		Details: map[string]wire.ListDetail{"other": allowDetail(exp)}})
	if err != nil || reset == nil || reset.Why != wire.ResetEpoch {
		t.Fatalf("replace: reset %+v, err %v", reset, err)
	}
	if s.Allowlisted("bulk-buyer", t0) || !s.Allowlisted("other", t0) {
		t.Fatal("snapshot did not replace the list")
	}
	// An old snapshot replayed is stale.
	_, err = s.ReplaceAllowlist(wire.Snapshot{Epoch: "H", Seq: 1, Accounts: []string{}, IssuedAt: t0})
	if !errors.As(err, &gap) || !gap.Stale() {
		t.Fatalf("old snapshot: err = %v", err)
	}
	s.Close()
	s2, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.AllowlistVersion(); got != (wire.ListVersion{Epoch: "H2", Seq: 1}) {
		t.Fatalf("version after reopen %+v", got)
	}
	d, ok := s2.AllowlistEntry("other", t0)
	if !ok || d.Rule != "case:c-1" || !d.ExpiresAt.Equal(exp) {
		t.Fatalf("entry after reopen %+v, %v", d, ok)
	}
}

package state

import (
	"errors"
	"fmt"
	"testing"
)

func TestDenylist(t *testing.T) {
	s, path := newStore(t)
	type step struct {
		name     string
		apply    func() error
		gap      bool // refused with a GapError
		stale    bool
		seq      uint64
		listed   []string
		unlisted []string
	}
	steps := []step{
		{name: "delta 1", apply: func() error { return s.ApplyDenylistDelta(1, []string{"a", "b"}, nil) }, seq: 1, listed: []string{"a", "b"}},
		{name: "delta 3 skips 2", apply: func() error { return s.ApplyDenylistDelta(3, []string{"c"}, nil) }, gap: true, seq: 1, unlisted: []string{"c"}},
		{name: "delta 1 again", apply: func() error { return s.ApplyDenylistDelta(1, []string{"z"}, nil) }, gap: true, stale: true, seq: 1, unlisted: []string{"z"}},
		{name: "delta 2", apply: func() error { return s.ApplyDenylistDelta(2, []string{"c"}, []string{"a"}) }, seq: 2, listed: []string{"b", "c"}, unlisted: []string{"a"}},
		{name: "old snapshot", apply: func() error { return s.ReplaceDenylist(1, []string{"q"}) }, gap: true, stale: true, seq: 2, listed: []string{"b", "c"}},
		{name: "snapshot", apply: func() error { return s.ReplaceDenylist(10, []string{"x", "y", "x"}) }, seq: 10, listed: []string{"x", "y"}, unlisted: []string{"b", "c"}},
		{name: "same snapshot again", apply: func() error { return s.ReplaceDenylist(10, []string{"x", "y"}) }, seq: 10, listed: []string{"x", "y"}},
		{name: "empty account", apply: func() error { return s.ApplyDenylistDelta(11, []string{""}, nil) }, seq: 10},
	}
	check := func(t *testing.T, s *Store, st step) {
		if s.DenylistSeq() != st.seq {
			t.Errorf("%s: seq %d, want %d", st.name, s.DenylistSeq(), st.seq)
		}
		for _, a := range st.listed {
			if !s.Denylisted(a) {
				t.Errorf("%s: %q not listed", st.name, a)
			}
		}
		for _, a := range st.unlisted {
			if s.Denylisted(a) {
				t.Errorf("%s: %q listed", st.name, a)
			}
		}
	}
	for _, st := range steps {
		err := st.apply()
		var gap *GapError
		if st.gap != errors.As(err, &gap) {
			t.Fatalf("%s: %v, want gap=%v", st.name, err, st.gap)
		}
		if st.gap && gap.Stale() != st.stale {
			t.Errorf("%s: Stale() = %v", st.name, gap.Stale())
		}
		if st.name == "empty account" && err == nil {
			t.Fatal("empty account accepted")
		}
		check(t, s, st)
	}
	s.Close()
	check(t, openT(t, path, testOptions()), steps[len(steps)-1])
}

// The million-entry load is measured by BenchmarkOpenDenylist; this checks
// a large snapshot survives a reopen intact.
func TestDenylistLargeSnapshotReloads(t *testing.T) {
	s, path := newStore(t)
	accounts := denyAccounts(50_000)
	if err := s.ReplaceDenylist(1, accounts); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, path, testOptions())
	for _, i := range []int{0, 1, 24_999, 49_999} {
		if !s.Denylisted(accounts[i]) {
			t.Fatalf("account %d not listed after reopen", i)
		}
	}
	if s.Denylisted("acct-x") {
		t.Error("unlisted account found")
	}
}

func denyAccounts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acct-%016x", uint64(i)*0x9E3779B97F4A7C15)
	}
	return out
}

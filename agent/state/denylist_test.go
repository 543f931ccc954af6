package state

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/posguard/posguard/wire"
)

func TestDenylist(t *testing.T) {
	s, path := newStore(t)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	v := func(epoch string, seq uint64) wire.ListVersion { return wire.ListVersion{Epoch: epoch, Seq: seq} }
	delta := func(epoch string, seq uint64, min int, add, remove []string) func() (*wire.DenylistReset, error) {
		return func() (*wire.DenylistReset, error) {
			return nil, s.ApplyDenylistDelta(v(epoch, seq), at(min), add, remove)
		}
	}
	snapshot := func(epoch string, seq uint64, min int, accounts ...string) func() (*wire.DenylistReset, error) {
		return func() (*wire.DenylistReset, error) { return s.ReplaceDenylist(v(epoch, seq), at(min), accounts) }
	}
	type step struct {
		name     string
		apply    func() (*wire.DenylistReset, error)
		gap      bool   // refused with a GapError
		stale    bool   // ... that is an old message to ignore
		why      string // GapError.Why, or the reset reported by a snapshot
		want     wire.ListVersion
		listed   []string
		unlisted []string
	}
	steps := []step{
		{name: "delta 1", apply: delta("A", 1, 1, []string{"a", "b"}, nil), want: v("A", 1), listed: []string{"a", "b"}},
		{name: "delta 3 skips 2", apply: delta("A", 3, 3, []string{"c"}, nil), gap: true, want: v("A", 1), unlisted: []string{"c"}},
		{name: "delta 1 again", apply: delta("A", 1, 1, []string{"z"}, nil), gap: true, stale: true, want: v("A", 1), unlisted: []string{"z"}},
		{name: "delta 2", apply: delta("A", 2, 2, []string{"c"}, []string{"a"}), want: v("A", 2), listed: []string{"b", "c"}, unlisted: []string{"a"}},
		{name: "old snapshot", apply: snapshot("A", 1, 1, "q"), gap: true, stale: true, want: v("A", 2), listed: []string{"b", "c"}},
		{name: "snapshot", apply: snapshot("A", 10, 10, "x", "y", "x"), want: v("A", 10), listed: []string{"x", "y"}, unlisted: []string{"b", "c"}},
		{name: "same snapshot again", apply: snapshot("A", 10, 10, "x", "y"), want: v("A", 10), listed: []string{"x", "y"}},
		{name: "empty account", apply: delta("A", 11, 11, []string{""}, nil), want: v("A", 10)},
		// HQ's store replaced (fresh file, moved to PostgreSQL): its
		// sequence restarts in a new epoch. Deltas are refused for a
		// resync, whatever their number; the snapshot heals.
		{name: "delta 1 of a new epoch", apply: delta("B", 1, 20, []string{"n"}, nil), gap: true, why: wire.ResetEpoch, want: v("A", 10), unlisted: []string{"n"}},
		{name: "delta 11 of a new epoch", apply: delta("B", 11, 20, []string{"n"}, nil), gap: true, why: wire.ResetEpoch, want: v("A", 10), unlisted: []string{"n"}},
		{name: "snapshot of the new epoch", apply: snapshot("B", 1, 21, "n"), why: wire.ResetEpoch, want: v("B", 1), listed: []string{"n"}, unlisted: []string{"x", "y"}},
		{name: "old epoch's snapshot replayed", apply: snapshot("A", 10, 10, "x", "y"), gap: true, stale: true, want: v("B", 1), listed: []string{"n"}, unlisted: []string{"x"}},
		{name: "delta 2", apply: delta("B", 2, 22, []string{"m"}, nil), want: v("B", 2), listed: []string{"m", "n"}},
		{name: "delta 3", apply: delta("B", 3, 23, nil, []string{"n"}), want: v("B", 3), listed: []string{"m"}, unlisted: []string{"n"}},
		// HQ restored from a backup taken at seq 1: same epoch, its next
		// change is seq 2 again but issued later.
		{name: "delta 2 issued after 3", apply: delta("B", 2, 30, []string{"r"}, nil), gap: true, why: wire.ResetBackwards, want: v("B", 3), unlisted: []string{"r"}},
		{name: "restored snapshot at 2", apply: snapshot("B", 2, 31, "n", "r"), why: wire.ResetBackwards, want: v("B", 2), listed: []string{"n", "r"}, unlisted: []string{"m"}},
		// The old timeline's delta 3 follows the restored list by number,
		// but was issued before it.
		{name: "redelivered old delta 3", apply: delta("B", 3, 23, nil, []string{"n"}), gap: true, stale: true, want: v("B", 2), listed: []string{"n"}},
		{name: "old timeline's snapshot at 3", apply: snapshot("B", 3, 24, "m"), gap: true, stale: true, want: v("B", 2), listed: []string{"n"}, unlisted: []string{"m"}},
		{name: "next delta 3 after the restore", apply: delta("B", 3, 32, []string{"s"}, nil), want: v("B", 3), listed: []string{"n", "r", "s"}},
	}
	check := func(t *testing.T, s *Store, st step) {
		if got := s.DenylistVersion(); got != st.want {
			t.Errorf("%s: version %+v, want %+v", st.name, got, st.want)
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
		reset, err := st.apply()
		var gap *GapError
		if st.gap != errors.As(err, &gap) {
			t.Fatalf("%s: %v, want gap=%v", st.name, err, st.gap)
		}
		if st.gap {
			if gap.Stale() != st.stale {
				t.Errorf("%s: Stale() = %v", st.name, gap.Stale())
			}
			if gap.Why != st.why {
				t.Errorf("%s: Why = %q, want %q", st.name, gap.Why, st.why)
			}
		} else if err == nil {
			gotWhy := ""
			if reset != nil {
				gotWhy = reset.Why
				if reset.To != st.want {
					t.Errorf("%s: reset to %+v, want %+v", st.name, reset.To, st.want)
				}
			}
			if gotWhy != st.why {
				t.Errorf("%s: reset %q, want %q", st.name, gotWhy, st.why)
			}
		}
		if st.name == "empty account" && err == nil {
			t.Fatal("empty account accepted")
		}
		check(t, s, st)
	}
	s.Close()
	check(t, openT(t, path, testOptions()), steps[len(steps)-1])
}

// A register whose list predates epochs (an older posguard) takes the first
// snapshot with an epoch as a reset, and refuses deltas until then.
func TestDenylistWithoutEpochResyncs(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Seq: 5}, t0, []string{"old"}); err != nil {
		t.Fatal(err)
	}
	err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 6}, t0.Add(time.Minute), []string{"new"}, nil)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Why != wire.ResetEpoch {
		t.Fatalf("delta of an epoch onto a list without one: %v, want an epoch reset", err)
	}
	reset, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 6}, t0.Add(time.Minute), []string{"new"})
	if err != nil || reset == nil || reset.Why != wire.ResetEpoch || reset.From.Seq != 5 {
		t.Fatalf("snapshot with an epoch: reset %+v, %v", reset, err)
	}
	if s.Denylisted("old") || !s.Denylisted("new") {
		t.Error("list not replaced")
	}
}

// The million-entry load is measured by BenchmarkOpenDenylist; this checks
// a large snapshot survives a reopen intact.
func TestDenylistLargeSnapshotReloads(t *testing.T) {
	s, path := newStore(t)
	accounts := denyAccounts(50_000)
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, accounts); err != nil {
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

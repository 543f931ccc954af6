package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// An automatic entry is listed until its expiry, by the sale's time; the
// register's deny reason names the chain rule; details are written with
// the list in one transaction, so what a reopened file holds is always a
// whole message's list and details: a refused delta writes none, removals
// and plain re-adds forget them, a snapshot replaces them.
func TestDenylistDetails(t *testing.T) {
	s, path := newStore(t)
	exp := t0.Add(time.Hour)
	d := wire.ListDetail{ExpiresAt: exp, Rule: "crew-hopping", Reason: "account_stores: account paid at 3 stores within 30m0s", Events: []string{"S1/R1/e/1"}}
	delta := func(seq uint64, add, remove []string, details map[string]wire.ListDetail) wire.Delta {
		return wire.Delta{Epoch: "E", Seq: seq, IssuedAt: t0.Add(time.Duration(seq) * time.Second), Add: add, Remove: remove, Details: details}
	}
	if err := s.ApplyDenylist(delta(1, []string{"crew", "manual"}, nil, map[string]wire.ListDetail{"crew": d})); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, acct string, at time.Time, want bool) {
		t.Helper()
		if _, got := s.DenylistEntry(acct, at); got != want {
			t.Errorf("DenylistEntry(%s, %s) = %v, want %v", acct, at.Sub(t0), got, want)
		}
	}
	reopen := func() {
		t.Helper()
		s.Close()
		s = openT(t, path, testOptions())
	}
	check(s, "crew", exp.Add(-time.Nanosecond), true)
	check(s, "crew", exp, false) // at the expiry it is gone
	check(s, "manual", exp.Add(1000*time.Hour), true)
	check(s, "other", t0, false)

	// The register's deny reason names the rule.
	p, err := policy.Load(policy.Example())
	if err != nil {
		t.Fatal(err)
	}
	req := newSale("s1", "crew", t0.Add(time.Minute), "food", 1, 100)
	dec := policy.Evaluate(p, *req, s)
	if dec.Outcome != policy.Deny || !strings.Contains(dec.Rules[0].Reason, "chain rule crew-hopping (account_stores") {
		t.Errorf("decision %s %+v, want a deny naming the rule", dec.Outcome, dec.Rules)
	}
	req.At = exp
	if dec := policy.Evaluate(p, *req, s); dec.Outcome == policy.Deny {
		t.Errorf("after the expiry: %s %+v", dec.Outcome, dec.Rules)
	}

	reopen()
	check(s, "crew", exp.Add(-time.Nanosecond), true)
	check(s, "crew", exp, false)

	// Deltas the list refuses — a gap, a redelivery — write no detail: the
	// manual entry does not start expiring, in memory or in the file.
	expiring := map[string]wire.ListDetail{"manual": d}
	var gap *GapError
	if err := s.ApplyDenylist(delta(5, []string{"manual"}, nil, expiring)); !errors.As(err, &gap) || gap.Stale() {
		t.Fatalf("a delta after a gap: %v, want a gap", err)
	}
	if err := s.ApplyDenylist(delta(1, []string{"manual"}, nil, expiring)); !errors.As(err, &gap) || !gap.Stale() {
		t.Fatalf("a redelivered delta: %v, want stale", err)
	}
	check(s, "manual", exp, true)
	reopen()
	check(s, "manual", exp, true)

	// A plain re-add makes the entry permanent; a removal forgets the
	// detail, so a later plain add is permanent too.
	if err := s.ApplyDenylist(delta(2, []string{"crew"}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	reopen()
	check(s, "crew", exp, true)
	if err := s.ApplyDenylist(delta(3, []string{"crew"}, nil, map[string]wire.ListDetail{"crew": d})); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDenylist(delta(4, nil, []string{"crew"}, nil)); err != nil {
		t.Fatal(err)
	}
	reopen()
	check(s, "crew", t0, false)
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 5}, t0.Add(5*time.Second), []string{"crew"}, nil); err != nil {
		t.Fatal(err)
	}
	reopen()
	check(s, "crew", exp, true)

	// A snapshot brings the list and the details of its time, together.
	if _, err := s.ReplaceDenylistSnapshot(wire.Snapshot{Epoch: "E", Seq: 6, IssuedAt: t0.Add(6 * time.Second),
		Accounts: []string{"crew"}, Details: map[string]wire.ListDetail{"crew": d}}); err != nil {
		t.Fatal(err)
	}
	check(s, "crew", exp, false)
	check(s, "crew", t0, true)
	check(s, "manual", t0, false)
	reopen()
	check(s, "crew", exp, false)
	check(s, "crew", t0, true)
	// A snapshot without details leaves none.
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 7}, t0.Add(7*time.Second), []string{"crew"}); err != nil {
		t.Fatal(err)
	}
	reopen()
	check(s, "crew", exp, true)
}

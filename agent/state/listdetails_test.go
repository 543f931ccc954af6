package state

import (
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// An automatic entry is listed until its expiry, by the sale's time; the
// register's deny reason names the chain rule; details survive a restart
// and follow removals, plain re-adds and snapshots.
func TestDenylistDetails(t *testing.T) {
	s, path := newStore(t)
	exp := t0.Add(time.Hour)
	d := wire.ListDetail{ExpiresAt: exp, Rule: "crew-hopping", Reason: "account_stores: account paid at 3 stores within 30m0s", Events: []string{"S1/R1/e/1"}}
	add := []string{"crew", "manual"}
	if err := s.PutDenylistDetails(add, map[string]wire.ListDetail{"crew": d}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 1}, t0, add, nil); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, acct string, at time.Time, want bool) {
		t.Helper()
		if _, got := s.DenylistEntry(acct, at); got != want {
			t.Errorf("DenylistEntry(%s, %s) = %v, want %v", acct, at.Sub(t0), got, want)
		}
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

	s.Close()
	s = openT(t, path, testOptions())
	check(s, "crew", exp.Add(-time.Nanosecond), true)
	check(s, "crew", exp, false)

	// A plain re-add makes the entry permanent; a removal forgets it.
	if err := s.PutDenylistDetails([]string{"crew"}, nil); err != nil {
		t.Fatal(err)
	}
	check(s, "crew", exp, true)
	if err := s.PutDenylistDetails([]string{"crew"}, map[string]wire.ListDetail{"crew": d}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDenylistDelta(wire.ListVersion{Epoch: "E", Seq: 2}, t0, nil, []string{"crew"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropDenylistDetails([]string{"crew"}); err != nil {
		t.Fatal(err)
	}
	check(s, "crew", t0, false)
	// A snapshot brings the details of its time.
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 3}, t0, []string{"crew"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceDenylistDetails(map[string]wire.ListDetail{"crew": d}, nil); err != nil {
		t.Fatal(err)
	}
	check(s, "crew", exp, false)
	check(s, "crew", t0, true)
}

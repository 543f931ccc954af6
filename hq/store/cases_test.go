package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

func caseAlert(store, account string, seq uint64) *event.Event {
	ev := decision(store, "r1", seq, t0.Add(time.Duration(seq)*time.Minute), account, policy.Deny)
	ev.Type = event.Alert
	return &ev
}

func opened(by string, at time.Time) CaseChange {
	return CaseChange{To: CaseOpen, By: by, Note: "chain rule account_stores", At: at}
}

func TestCasesOpenOrExtend(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		a1 := caseAlert("s1", "acct-a", 1)
		id, isNew, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: a1, Opened: opened("hq", t0)})
		if err != nil || !isNew {
			t.Fatalf("open: %s %v %v", id, isNew, err)
		}
		// The same alert again: attached once, same case.
		again, isNew, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: a1, Opened: opened("hq", t0)})
		if err != nil || isNew || again != id {
			t.Fatalf("same alert again: %s %v %v, want %s", again, isNew, err, id)
		}
		// Another alert of the account, at another store: the same case.
		a2 := caseAlert("s2", "acct-a", 2)
		ext, isNew, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s2", Alert: a2, Opened: opened("hq", t0.Add(time.Minute))})
		if err != nil || isNew || ext != id {
			t.Fatalf("extend: %s %v %v", ext, isNew, err)
		}
		// Another account, and a store incident: cases of their own.
		other, _, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-b", Store: "s1", Alert: caseAlert("s1", "acct-b", 3), Opened: opened("hq", t0)})
		if err != nil || other == id {
			t.Fatalf("other account: %s %v", other, err)
		}
		inc, _, err := s.OpenOrExtendCase(ctx, NewCase{Store: "s1", Opened: opened("analyst (token)", t0)})
		if err != nil || inc == id || inc == other {
			t.Fatalf("store incident: %s %v", inc, err)
		}
		d, err := s.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Alerts != 2 || len(d.AlertEvents) != 2 || d.AlertEvents[0].ID != a1.ID || d.AlertEvents[1].ID != a2.ID {
			t.Fatalf("case alerts %d %v", d.Alerts, ids(d.AlertEvents))
		}
		if len(d.Stores) != 2 || d.Stores[0] != "s1" || d.Stores[1] != "s2" || d.State != CaseOpen {
			t.Fatalf("case %+v", d.Case)
		}
		if len(d.History) != 1 || d.History[0].By != "hq" || d.History[0].To != CaseOpen {
			t.Fatalf("history %+v", d.History)
		}
		// Filters and paging.
		got, err := s.Cases(ctx, CaseQuery{Store: "s2"})
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("cases at s2: %+v %v", got, err)
		}
		page, err := s.Cases(ctx, CaseQuery{Limit: 2})
		if err != nil || len(page) != 2 {
			t.Fatalf("page 1: %+v %v", page, err)
		}
		rest, err := s.Cases(ctx, CaseQuery{After: page[1].ID})
		if err != nil || len(rest) != 1 || rest[0].ID != inc {
			t.Fatalf("page 2: %+v %v", rest, err)
		}
		if _, err := s.Case(ctx, "999"); !errors.Is(err, ErrCaseNotFound) {
			t.Fatalf("missing case: %v", err)
		}
		if _, err := s.Case(ctx, "x'; DROP"); !errors.Is(err, ErrCaseNotFound) {
			t.Fatalf("bad case id: %v", err)
		}
	})
}

// Two analysts move the same case at once: exactly one wins, the other
// is told the case changed.
func TestCaseMoveCompareAndSet(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		id, _, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: caseAlert("s1", "acct-a", 1), Opened: opened("hq", t0)})
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				to := CaseConfirmedFraud
				if i%2 == 1 {
					to = CaseFalsePositive
				}
				_, errs[i] = s.MoveCase(ctx, id, CaseChange{From: CaseOpen, To: to, By: "analyst", Note: "checked", At: t0.Add(time.Hour)})
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrCaseConflict):
				var ce *CaseConflictError
				if !errors.As(err, &ce) || ce.Current == CaseOpen {
					t.Errorf("conflict without the current state: %v", err)
				}
			default:
				t.Errorf("move: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d moves won, want exactly 1", wins)
		}
		d, err := s.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.History) != 2 {
			t.Fatalf("history has %d changes, want open + the winner", len(d.History))
		}
		// The account's next alert opens a new case: this one is decided.
		next, isNew, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: caseAlert("s1", "acct-a", 9), Opened: opened("hq", t0.Add(2*time.Hour))})
		if err != nil || !isNew || next == id {
			t.Fatalf("after the verdict: %s %v %v", next, isNew, err)
		}
		// One decided, one open: what HQ's cases gauge reports.
		counts, err := s.CaseCounts(ctx)
		if err != nil || len(counts) != 2 || counts[CaseOpen] != 1 || counts[d.State] != 1 {
			t.Fatalf("case counts = %v (err %v), want 1 open and 1 %s", counts, err, d.State)
		}
	})
}

func TestCaseLabels(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		move := func(id, from, to string, at time.Time) {
			t.Helper()
			if _, err := s.MoveCase(ctx, id, CaseChange{From: from, To: to, By: "analyst", Note: "n", At: at}); err != nil {
				t.Fatal(err)
			}
		}
		open := func(acct string, seq uint64) string {
			t.Helper()
			id, _, err := s.OpenOrExtendCase(ctx, NewCase{Account: acct, Store: "s1", Alert: caseAlert("s1", acct, seq), Opened: opened("hq", t0)})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		fraud := open("acct-f", 1)
		move(fraud, CaseOpen, CaseConfirmedFraud, t0.Add(time.Hour))
		move(fraud, CaseConfirmedFraud, CaseClosed, t0.Add(2*time.Hour)) // closing keeps the label
		legit := open("acct-l", 2)
		move(legit, CaseOpen, CaseFalsePositive, t0.Add(time.Hour))
		open("acct-open", 3) // no verdict, no label
		// An account first found legitimate, later confirmed: the latest wins.
		first := open("acct-both", 4)
		move(first, CaseOpen, CaseFalsePositive, t0.Add(time.Hour))
		second := open("acct-both", 5)
		move(second, CaseOpen, CaseConfirmedFraud, t0.Add(3*time.Hour))
		got, err := s.Labels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Label{
			{Account: "acct-both", Label: LabelFraud, Case: second, At: t0.Add(3 * time.Hour)},
			{Account: "acct-f", Label: LabelFraud, Case: fraud, At: t0.Add(time.Hour)},
			{Account: "acct-l", Label: LabelLegit, Case: legit, At: t0.Add(time.Hour)},
		}
		if len(got) != len(want) {
			t.Fatalf("labels %+v\nwant %+v", got, want)
		}
		for i := range want {
			if got[i].Account != want[i].Account || got[i].Label != want[i].Label || got[i].Case != want[i].Case || !got[i].At.Equal(want[i].At) {
				t.Errorf("label %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

func TestAllowlistStore(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		v0, accts, _, err := s.Allowlist(ctx)
		if err != nil || v0.Seq != 0 || v0.Epoch == "" || len(accts) != 0 {
			t.Fatalf("empty allowlist: %+v %v %v", v0, accts, err)
		}
		exp := t0.Add(30 * 24 * time.Hour)
		v, err := s.AllowlistChange(ctx, ListChange{Add: []string{"acct-a"}, At: t0, By: "analyst", Reason: "ID check",
			Details: map[string]wire.ListDetail{"acct-a": {ExpiresAt: exp, Rule: "case:1", Reason: "passed an ID check at store S014"}}})
		if err != nil || v.Seq != 1 || v.Epoch != v0.Epoch {
			t.Fatalf("change: %+v %v", v, err)
		}
		dv, _, err := s.Denylist(ctx)
		if err != nil || dv.Seq != 0 || dv.Epoch == v.Epoch {
			t.Fatalf("the allowlist shares the denylist's version: deny %+v allow %+v", dv, v)
		}
		v2, accts, details, err := s.Allowlist(ctx)
		if err != nil || v2 != v || len(accts) != 1 || !details["acct-a"].ExpiresAt.Equal(exp) || details["acct-a"].Rule != "case:1" {
			t.Fatalf("allowlist %+v %v %+v %v", v2, accts, details, err)
		}
		if v, err = s.AllowlistChange(ctx, ListChange{Remove: []string{"acct-a"}, At: t0, By: "hq", Reason: "expired"}); err != nil || v.Seq != 2 {
			t.Fatalf("remove: %+v %v", v, err)
		}
		if _, accts, _, _ = s.Allowlist(ctx); len(accts) != 0 {
			t.Fatalf("after removal: %v", accts)
		}
	})
}

// Each allowlist change is recorded as an allowlist event, made in the
// same transaction as the change and shaped like the denylist's record:
// id hq/allowlist/{epoch}/{seq}, who and why. Concurrent changes each get
// one record, with their own number.
func TestAllowlistChangesRecorded(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		exp := t0.Add(30 * 24 * time.Hour)
		v1, err := s.AllowlistChange(ctx, ListChange{Add: []string{"acct-a"}, At: t0, By: "analyst (console)", Reason: "false positive: ID check at S014",
			Details: map[string]wire.ListDetail{"acct-a": {ExpiresAt: exp, Rule: "case:7"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DenylistChange(ctx, ListChange{Add: []string{"acct-x"}, At: t0, By: "test", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		v2, err := s.AllowlistChange(ctx, ListChange{Remove: []string{"acct-a"}, At: t0.Add(time.Minute), By: "hq", Reason: "expired"})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := s.Events(ctx, Query{Types: []event.Type{event.AllowlistChanged}})
		if err != nil || len(recs) != 2 {
			t.Fatalf("recorded allowlist changes = %+v (err %v), want 2", recs, err)
		}
		want := []event.Event{
			{ID: event.ID(event.HQStore, event.HQAllowlist, v1.Epoch, 1), Seq: 1, Type: event.AllowlistChanged, Store: event.HQStore, Register: event.HQAllowlist, At: t0,
				Allowlist: &event.ListInfo{Epoch: v1.Epoch, Seq: 1, Add: []string{"acct-a"}, By: "analyst (console)", Reason: "false positive: ID check at S014"}},
			{ID: event.ID(event.HQStore, event.HQAllowlist, v2.Epoch, 2), Seq: 2, Type: event.AllowlistChanged, Store: event.HQStore, Register: event.HQAllowlist, At: t0.Add(time.Minute),
				Allowlist: &event.ListInfo{Epoch: v2.Epoch, Seq: 2, Remove: []string{"acct-a"}, By: "hq", Reason: "expired"}},
		}
		for i, ev := range recs {
			if !ev.At.Equal(want[i].At) {
				t.Errorf("record %d at %s, want %s", i, ev.At, want[i].At)
			}
			ev.At = want[i].At
			if !reflect.DeepEqual(ev, want[i]) {
				t.Errorf("record %d = %+v %+v\nwant %+v %+v", i, ev, ev.Allowlist, want[i], want[i].Allowlist)
			}
		}
		// The denylist's records are its own.
		if deny, err := s.Events(ctx, Query{Types: []event.Type{event.DenylistChanged}}); err != nil || len(deny) != 1 || deny[0].Allowlist != nil {
			t.Fatalf("denylist records = %+v (err %v), want 1 without an allowlist change", deny, err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AllowlistChange(ctx, ListChange{Add: []string{fmt.Sprint("acct-c", i)}, At: t0, By: "test", Reason: "test",
					Details: map[string]wire.ListDetail{fmt.Sprint("acct-c", i): {ExpiresAt: exp}}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if recs, err = s.Events(ctx, Query{Types: []event.Type{event.AllowlistChanged}}); err != nil || len(recs) != 10 {
			t.Fatalf("after 8 concurrent changes: %d records (err %v), want 10", len(recs), err)
		}
		seen := map[uint64]string{}
		for _, ev := range recs {
			if prev, dup := seen[ev.Seq]; dup || len(ev.Allowlist.Add)+len(ev.Allowlist.Remove) != 1 {
				t.Errorf("seq %d recorded twice (%s, %s) or with the wrong change %+v", ev.Seq, prev, ev.ID, ev.Allowlist)
			}
			seen[ev.Seq] = ev.ID
		}
		for seq := uint64(1); seq <= 10; seq++ {
			if _, ok := seen[seq]; !ok {
				t.Errorf("no record of allowlist change %d", seq)
			}
		}
	})
}

// Cases and the allowlist are in the file: an HQ restart finds them.
func TestCasesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: caseAlert("s1", "acct-a", 1), Opened: opened("hq", t0)})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _, _ := s.Allowlist(ctx)
	s.Close()
	if s, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Case(ctx, id)
	if err != nil || d.State != CaseOpen || d.Alerts != 1 {
		t.Fatalf("after reopen: %+v %v", d.Case, err)
	}
	if v2, _, _, _ := s.Allowlist(ctx); v2.Epoch != v.Epoch {
		t.Fatalf("allowlist epoch changed across a reopen: %s → %s", v.Epoch, v2.Epoch)
	}
	// The open case is still the account's open case.
	again, isNew, err := s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: caseAlert("s1", "acct-a", 2), Opened: opened("hq", t0)})
	if err != nil || isNew || again != id {
		t.Fatalf("extend after reopen: %s %v %v", again, isNew, err)
	}
}

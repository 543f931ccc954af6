package backtest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy"
)

// TestHistoryMatchesAgent commits the same decided sales to a real agent
// state file and to the replay history, then asks both the same window
// questions, per register and per store: the backtest must see what a
// register would have seen, denied sales included (they do not count for
// the account, they do count at the register and the store). The sales of
// R2 are what R1 learns from its peer; those of S002 are there to prove
// that neither looks past its store.
func TestHistoryMatchesAgent(t *testing.T) {
	p := load(t, chainDefault)
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{Store: "S001", Register: "R1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newHistory(DefaultRetention, nil)

	base := at("14:00")
	sales := []struct {
		acct       string
		min        int
		outcome    policy.Outcome
		store, reg string
		lines      []policy.Line
	}{
		{"a", 0, policy.Allow, "S001", "R1", []policy.Line{qty(meviusCarton, 2)}},
		{"b", 3, policy.Review, "S001", "R1", []policy.Line{qty(meviusCarton, 2), qty(onigiri, 1)}},
		{"c", 6, policy.Deny, "S001", "R1", []policy.Line{qty(sevenStarsCarton, 5)}},
		{"a", 9, policy.Deny, "S001", "R1", []policy.Line{qty(meviusCarton, 2)}},
		{"d", 12, policy.Allow, "S001", "R1", []policy.Line{qty(onigiri, 2), qty(coffee, 1)}},
		{"a", 14, policy.Allow, "S001", "R2", []policy.Line{qty(meviusCarton, 1)}},
		{"f", 20, policy.Deny, "S001", "R2", []policy.Line{qty(heatCarton, 3)}},
		{"a", 25, policy.Allow, "S002", "R1", []policy.Line{qty(sevenStarsCarton, 2)}},
		{"g", 30, policy.Allow, "S002", "R1", []policy.Line{qty(meviusCarton, 1)}},
		{"a", 40, policy.Allow, "S001", "R1", []policy.Line{qty(sevenStarsPack, 3)}},
		{"e", 45, policy.Allow, "S001", "R1", []policy.Line{qty(heatCarton, 1)}},
	}
	for i, s := range sales {
		req := &policy.Request{SaleID: fmt.Sprint("s", i), Store: s.store, Register: s.reg, At: base.Add(time.Duration(s.min) * time.Minute),
			Lines: s.lines, Payment: account(s.acct)}
		if _, err := st.Commit(context.Background(), state.Record{Request: req, Decision: &policy.Decision{Outcome: s.outcome}}); err != nil {
			t.Fatal(err)
		}
		h.add(p, req, s.outcome)
	}
	tobacco := []string{"tobacco", "tobacco-carton", "e-cigarette"}
	end := base.Add(50 * time.Minute)
	places := []struct{ store, reg string }{{"S001", "R1"}, {"S001", "R2"}, {"S001", ""}, {"S002", ""}, {"S002", "R2"}, {"S003", ""}}
	for _, acct := range []string{"a", "b", "c", "d", "e", "f", "nobody"} {
		for _, since := range []time.Duration{time.Minute, 15 * time.Minute, 30 * time.Minute, 50 * time.Minute, 24 * time.Hour} {
			for _, cats := range [][]string{nil, tobacco, {"food"}, {"tobacco-carton"}} {
				for _, pl := range places {
					name := fmt.Sprintf("%s/%s/%v at %s/%s", acct, since, cats, pl.store, pl.reg)
					if got, want := h.AccountSales(acct, pl.store, pl.reg, end.Add(-since), cats), st.AccountSales(acct, pl.store, pl.reg, end.Add(-since), cats); got != want {
						t.Errorf("AccountSales %s: replay %+v, agent %+v", name, got, want)
					}
					if got, want := h.DistinctAccounts(pl.store, pl.reg, end.Add(-since), cats, acct), st.DistinctAccounts(pl.store, pl.reg, end.Add(-since), cats, acct); got != want {
						t.Errorf("DistinctAccounts %s: replay %d, agent %d", name, got, want)
					}
				}
			}
		}
	}
	// The facts behind the comparison, so it cannot pass on two empty
	// histories: a's denied sale does not count, c's and f's denied
	// attempts do; a's sales at R2 count for the store, not for R1, and
	// its sale at S002 for neither.
	if got := h.AccountSales("a", "S001", "R1", base, tobacco); got.Sales != 2 || got.Quantity != 5 {
		t.Errorf("a's tobacco sales at R1 %+v, want 2 sales (the denied one left out), 5 items", got)
	}
	if got := h.AccountSales("a", "S001", "", base, tobacco); got.Sales != 3 || got.Quantity != 6 {
		t.Errorf("a's tobacco sales at S001 %+v, want 3 sales, 6 items", got)
	}
	if got := h.AccountSales("c", "S001", "", base, nil); got.Sales != 0 {
		t.Errorf("c's denied sale counted: %+v", got)
	}
	if got := h.DistinctAccounts("S001", "R1", base, tobacco, "e"); got != 3 {
		t.Errorf("distinct tobacco accounts at R1 before e: %d, want 3 (a, b and the denied c)", got)
	}
	if got := h.DistinctAccounts("S001", "", base, tobacco, "e"); got != 4 {
		t.Errorf("distinct tobacco accounts at S001 before e: %d, want 4 (a, b, the denied c and f)", got)
	}
}

func TestHistoryPrune(t *testing.T) {
	p := load(t, chainDefault)
	h := newHistory(time.Hour, []string{"flagged"})
	h.pruneEvery = 4
	for i := range 12 {
		req := &policy.Request{Store: "S", Register: "R", At: at("09:00").Add(time.Duration(i) * 20 * time.Minute),
			Lines: []policy.Line{qty(sevenStarsPack, 1)}, Payment: account(fmt.Sprint("acct-", i%2))}
		h.add(p, req, policy.Allow)
	}
	// 12 sales 20 minutes apart, pruned after the 4th, 8th and 12th: the
	// last prune (newest 12:40) keeps 11:40 and later.
	if n := h.Len(); n != 4 {
		t.Errorf("%d sales kept, want 4", n)
	}
	if got := h.AccountSales("acct-1", "S", "", at("00:00"), nil); got.Sales != 2 {
		t.Errorf("acct-1 has %d sales after pruning, want 2", got.Sales)
	}
	if !h.Denylisted("flagged") || h.Denylisted("acct-1") {
		t.Error("denylist lookups wrong")
	}
}

// TestHistoryEmptyCategory: a line recorded without a category counts in
// the category the catalog gives its JAN, as Evaluate sees the current sale.
func TestHistoryEmptyCategory(t *testing.T) {
	p := load(t, chainDefault)
	h := newHistory(DefaultRetention, nil)
	carton := qty(sevenStarsCarton, 2)
	carton.Category = ""
	mystery := policy.Line{JAN: "4999999999999", Quantity: 1, UnitPrice: 100}
	h.add(p, &policy.Request{Store: "S", Register: "R", At: at("10:00"), Lines: []policy.Line{carton, mystery}, Payment: account("x")}, policy.Allow)
	if got := h.AccountSales("x", "S", "R", at("09:00"), []string{"tobacco-carton"}); got.Quantity != 2 || got.Amount != 12_000 {
		t.Errorf("cartons %+v", got)
	}
	if got := h.AccountSales("x", "S", "", at("09:00"), []string{"unknown"}); got.Quantity != 1 {
		t.Errorf("unknown %+v", got)
	}
}

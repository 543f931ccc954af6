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
// questions: the backtest must see what a register would have seen, denied
// sales included (they do not count for the account, they do count at the
// register).
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
		acct    string
		min     int
		outcome policy.Outcome
		lines   []policy.Line
	}{
		{"a", 0, policy.Allow, []policy.Line{qty(meviusCarton, 2)}},
		{"b", 3, policy.Review, []policy.Line{qty(meviusCarton, 2), qty(onigiri, 1)}},
		{"c", 6, policy.Deny, []policy.Line{qty(sevenStarsCarton, 5)}},
		{"a", 9, policy.Deny, []policy.Line{qty(meviusCarton, 2)}},
		{"d", 12, policy.Allow, []policy.Line{qty(onigiri, 2), qty(coffee, 1)}},
		{"a", 40, policy.Allow, []policy.Line{qty(sevenStarsPack, 3)}},
		{"e", 45, policy.Allow, []policy.Line{qty(heatCarton, 1)}},
	}
	for i, s := range sales {
		req := &policy.Request{SaleID: fmt.Sprint("s", i), Store: "S001", Register: "R1", At: base.Add(time.Duration(s.min) * time.Minute),
			Lines: s.lines, Payment: account(s.acct)}
		if _, err := st.Commit(context.Background(), state.Record{Request: req, Decision: &policy.Decision{Outcome: s.outcome}}); err != nil {
			t.Fatal(err)
		}
		h.add(p, req, s.outcome)
	}
	tobacco := []string{"tobacco", "tobacco-carton", "e-cigarette"}
	end := base.Add(50 * time.Minute)
	for _, acct := range []string{"a", "b", "c", "d", "e", "nobody"} {
		for _, since := range []time.Duration{time.Minute, 15 * time.Minute, 30 * time.Minute, 50 * time.Minute, 24 * time.Hour} {
			for _, cats := range [][]string{nil, tobacco, {"food"}, {"tobacco-carton"}} {
				name := fmt.Sprintf("%s/%s/%v", acct, since, cats)
				if got, want := h.AccountSales(acct, end.Add(-since), cats), st.AccountSales(acct, end.Add(-since), cats); got != want {
					t.Errorf("AccountSales %s: replay %+v, agent %+v", name, got, want)
				}
				if got, want := h.RegisterAccounts("S001", "R1", end.Add(-since), cats, acct), st.RegisterAccounts("S001", "R1", end.Add(-since), cats, acct); got != want {
					t.Errorf("RegisterAccounts %s: replay %d, agent %d", name, got, want)
				}
			}
		}
	}
	// The facts behind the comparison, so it cannot pass on two empty
	// histories: a's denied sale does not count, c's denied attempt does.
	if got := h.AccountSales("a", base, tobacco); got.Sales != 2 || got.Quantity != 5 {
		t.Errorf("a's tobacco sales %+v, want 2 sales (the denied one left out), 5 items", got)
	}
	if got := h.AccountSales("c", base, nil); got.Sales != 0 {
		t.Errorf("c's denied sale counted: %+v", got)
	}
	if got := h.RegisterAccounts("S001", "R1", base, tobacco, "e"); got != 3 {
		t.Errorf("distinct tobacco accounts before e: %d, want 3 (a, b and the denied c)", got)
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
	if got := h.AccountSales("acct-1", at("00:00"), nil); got.Sales != 2 {
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
	if got := h.AccountSales("x", at("09:00"), []string{"tobacco-carton"}); got.Quantity != 2 || got.Amount != 12_000 {
		t.Errorf("cartons %+v", got)
	}
	if got := h.AccountSales("x", at("09:00"), []string{"unknown"}); got.Quantity != 1 {
		t.Errorf("unknown %+v", got)
	}
}

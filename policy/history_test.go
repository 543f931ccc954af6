package policy

import (
	"testing"
	"time"
)

// TestMemoryHistoryOrderDeniedPrune: sales added out of time order are
// found as if added in order, a denied attempt counts at the register but
// not for the account, and Prune drops the old sales from both indexes.
func TestMemoryHistoryOrderDeniedPrune(t *testing.T) {
	h := NewMemoryHistory(nil, nil)
	for _, m := range []int{40, 10, 30, 20, 50, 0} {
		acct := "a"
		if m%20 == 0 {
			acct = "b"
		}
		h.Add(pastSale(acct, time.Duration(m)*time.Minute, cartons(1)))
	}
	h.Add(PastSale{At: t0.Add(-5 * time.Minute), Account: "c", Store: "S1", Register: "R1", Lines: []Line{cartons(3)}, Denied: true})
	h.Add(PastSale{At: t0.Add(-time.Minute), Store: "S1", Register: "R1", Lines: []Line{cartons(3)}}) // no account: not kept
	for _, list := range h.byAccount {
		for i := 1; i < len(list); i++ {
			if list[i].at.Before(list[i-1].at) {
				t.Fatal("account list out of order")
			}
		}
	}
	if got := h.AccountSales("a", t0.Add(-35*time.Minute), []string{"tobacco-carton"}); got.Sales != 2 || got.Quantity != 2 {
		t.Errorf("a since 35m: %+v", got)
	}
	if got := h.AccountSales("c", t0.Add(-time.Hour), nil); got != (Totals{}) {
		t.Errorf("denied sale counted for c: %+v", got)
	}
	if got := h.RegisterAccounts("S1", "R1", t0.Add(-time.Hour), nil, "a"); got != 2 {
		t.Errorf("register accounts besides a: %d, want 2 (b and the denied c)", got)
	}
	if n := h.Len(); n != 7 {
		t.Errorf("Len %d, want 7", n)
	}
	h.Prune(t0.Add(-25 * time.Minute))
	if n, r := h.Len(), len(h.byReg[regKey{"S1", "R1"}]); n != 4 || r != 4 {
		t.Errorf("after prune Len %d, register list %d, want 4", n, r)
	}
	if got := h.AccountSales("a", time.Time{}, nil); got.Sales != 1 {
		t.Errorf("a after prune: %+v", got)
	}
	if _, ok := h.byAccount["b"]; !ok {
		t.Error("b's recent sale pruned")
	}
	h.Prune(t0.Add(time.Hour))
	if h.Len() != 0 || len(h.byAccount) != 0 || len(h.byReg) != 0 {
		t.Errorf("everything pruned, still %d sales", h.Len())
	}
}

func TestMemoryHistoryLookupsDoNotAllocate(t *testing.T) {
	h := shinjuku(t)
	at := time.Date(2026, 7, 4, 15, 0, 0, 0, time.UTC)
	cats := []string{"tobacco-carton"}
	if n := testing.AllocsPerRun(100, func() {
		h.AccountSales("acct-1", at.Add(-time.Hour), cats)
		h.RegisterAccounts("S001", "R1", at.Add(-30*time.Minute), cats, "acct-2")
		h.RegisterAccounts("S001", "R1", at.Add(-30*time.Minute), nil, "nobody")
		h.Denylisted("acct-flagged-1")
	}); n != 0 {
		t.Errorf("lookups allocate %v times", n)
	}
}

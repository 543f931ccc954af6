package policy

import (
	"slices"
	"strconv"
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
	if got := h.AccountSales("a", "S1", "R1", t0.Add(-35*time.Minute), []string{"tobacco-carton"}); got.Sales != 2 || got.Quantity != 2 {
		t.Errorf("a since 35m: %+v", got)
	}
	if got := h.AccountSales("c", "S1", "", t0.Add(-time.Hour), nil); got != (Totals{}) {
		t.Errorf("denied sale counted for c: %+v", got)
	}
	if got := h.DistinctAccounts("S1", "R1", t0.Add(-time.Hour), nil, "a"); got != 2 {
		t.Errorf("register accounts besides a: %d, want 2 (b and the denied c)", got)
	}
	if n := h.Len(); n != 7 {
		t.Errorf("Len %d, want 7", n)
	}
	h.Prune(t0.Add(-25 * time.Minute))
	if n, r, s := h.Len(), len(h.byReg[regKey{"S1", "R1"}]), len(h.byStore["S1"]); n != 4 || r != 4 || s != 4 {
		t.Errorf("after prune Len %d, register list %d, store list %d, want 4", n, r, s)
	}
	if got := h.AccountSales("a", "S1", "", time.Time{}, nil); got.Sales != 1 {
		t.Errorf("a after prune: %+v", got)
	}
	if _, ok := h.byAccount["b"]; !ok {
		t.Error("b's recent sale pruned")
	}
	h.Prune(t0.Add(time.Hour))
	if h.Len() != 0 || len(h.byAccount) != 0 || len(h.byReg) != 0 || len(h.byStore) != 0 {
		t.Errorf("everything pruned, still %d sales", h.Len())
	}
}

func TestMemoryHistoryLookupsDoNotAllocate(t *testing.T) {
	h := shinjuku(t)
	at := time.Date(2026, 7, 4, 15, 0, 0, 0, time.UTC)
	cats := []string{"tobacco-carton"}
	if n := testing.AllocsPerRun(100, func() {
		h.AccountSales("acct-1", "S001", "R1", at.Add(-time.Hour), cats)
		h.AccountSales("acct-1", "S001", "", at.Add(-time.Hour), cats)
		h.DistinctAccounts("S001", "R1", at.Add(-30*time.Minute), cats, "acct-2")
		h.DistinctAccounts("S001", "", at.Add(-30*time.Minute), nil, "nobody")
		h.Denylisted("acct-flagged-1")
	}); n != 0 {
		t.Errorf("lookups allocate %v times", n)
	}
}

// TestMemoryHistoryScopes: with sales at two registers of one store and at
// another store, a register lookup sees its till, a store lookup every
// till of its store, and neither sees the other store.
func TestMemoryHistoryScopes(t *testing.T) {
	at := func(acct, store, reg string, ago time.Duration, denied bool, lines ...Line) PastSale {
		return PastSale{At: t0.Add(-ago), Account: acct, Store: store, Register: reg, Lines: lines, Denied: denied}
	}
	h := NewMemoryHistory([]PastSale{
		at("a", "S1", "R1", 20*time.Minute, false, cartons(1)),
		at("a", "S1", "R2", 10*time.Minute, false, cartons(2), onigiri(1)),
		at("a", "S2", "R1", 5*time.Minute, false, cartons(4)),
		at("b", "S1", "R2", 15*time.Minute, false, packs(3)),
		at("c", "S1", "R2", 2*time.Minute, true, cartons(9)), // refused: counts among the accounts only
		at("d", "S2", "R1", time.Minute, false, cartons(1)),
		at("e", "S1", "R1", time.Minute, false, onigiri(2)),
	}, nil)
	since := t0.Add(-time.Hour)
	cartonsOnly := []string{"tobacco-carton"}
	for _, tt := range []struct {
		account, store, register string
		cats                     []string
		want                     Totals
	}{
		{"a", "S1", "R1", cartonsOnly, Totals{Sales: 1, Quantity: 1, Amount: 6000}},
		{"a", "S1", "R2", cartonsOnly, Totals{Sales: 1, Quantity: 2, Amount: 12000}},
		{"a", "S1", "", cartonsOnly, Totals{Sales: 2, Quantity: 3, Amount: 18000}},
		{"a", "S1", "", nil, Totals{Sales: 2, Quantity: 4, Amount: 18200}},
		{"a", "S2", "", cartonsOnly, Totals{Sales: 1, Quantity: 4, Amount: 24000}},
		{"a", "S2", "R2", nil, Totals{}},
		{"a", "S3", "", nil, Totals{}},
		{"c", "S1", "", nil, Totals{}},
	} {
		if got := h.AccountSales(tt.account, tt.store, tt.register, since, tt.cats); got != tt.want {
			t.Errorf("AccountSales(%s, %s/%s, %v) = %+v, want %+v", tt.account, tt.store, tt.register, tt.cats, got, tt.want)
		}
	}
	for _, tt := range []struct {
		store, register string
		cats            []string
		exclude         string
		want            int
	}{
		{"S1", "R1", nil, "", 2},            // a, e
		{"S1", "R2", nil, "", 3},            // a, b, the refused c
		{"S1", "", nil, "", 4},              // a, b, c, e: a counted once across its tills
		{"S1", "", cartonsOnly, "", 2},      // a, c
		{"S1", "", cartonsOnly, "a", 1},     // the payer is not counted
		{"S1", "", []string{"food"}, "", 2}, // a's onigiri at R2, e at R1
		{"S2", "", nil, "", 2},              // a, d: the other store
		{"S2", "R2", nil, "", 0},            // no such till
		{"S3", "", nil, "", 0},              // no such store
	} {
		if got := h.DistinctAccounts(tt.store, tt.register, since, tt.cats, tt.exclude); got != tt.want {
			t.Errorf("DistinctAccounts(%s/%s, %v, %q) = %d, want %d", tt.store, tt.register, tt.cats, tt.exclude, got, tt.want)
		}
	}
	// The store list forgets with the others.
	h.Prune(t0.Add(-12 * time.Minute))
	if got := h.DistinctAccounts("S1", "", since, nil, ""); got != 3 {
		t.Errorf("after prune: %d accounts at S1, want 3 (a at R2, c, e)", got)
	}
	if n := h.Len(); n != 5 {
		t.Errorf("after prune Len %d, want 5", n)
	}
}

// TestMemoryHistoryCategoryBits: lookups by category bit count what a
// plain walk comparing category names counts, for categories the history
// has, has not and (past 64 distinct categories, when the lookups go back
// to comparing names) for every query, before and after the bits run out.
func TestMemoryHistoryCategoryBits(t *testing.T) {
	var sales []PastSale
	h := NewMemoryHistory(nil, nil)
	add := func(i int) {
		s := PastSale{At: t0.Add(-time.Duration(i%50) * time.Minute), Account: "a" + strconv.Itoa(i%7),
			Store: "S1", Register: "R" + strconv.Itoa(i%2),
			Lines: []Line{
				{JAN: "1", Category: "c" + strconv.Itoa(i%80), Quantity: 1 + i%3, UnitPrice: int64(100 * (i%5 + 1))},
				{JAN: "2", Category: "c" + strconv.Itoa((i*7)%80), Quantity: 2, UnitPrice: 150},
			}}
		if i%2 == 0 {
			s.Lines = append(s.Lines, Line{JAN: "3", Quantity: 1, UnitPrice: 90}) // unknown
		}
		sales = append(sales, s)
		h.Add(s)
	}
	// want is the lookups worked out from the sales themselves.
	want := func(acct, reg string, since time.Time, cats []string, exclude string) (Totals, int) {
		var tot Totals
		seen := map[string]bool{}
		in := func(c string) bool {
			if c == "" {
				c = "unknown"
			}
			return len(cats) == 0 || slices.Contains(cats, c)
		}
		for _, s := range sales {
			if s.At.Before(since) || (reg != "" && s.Register != reg) {
				continue
			}
			var q int
			var a int64
			hit := false
			for _, l := range s.Lines {
				if in(l.Category) {
					hit = true
					q += l.Quantity
					a += int64(l.Quantity) * l.UnitPrice
				}
			}
			if !hit {
				continue
			}
			if s.Account == acct {
				tot.Sales++
				tot.Quantity += q
				tot.Amount += a
			}
			if s.Account != exclude {
				seen[s.Account] = true
			}
		}
		return tot, len(seen)
	}
	queries := [][]string{nil, {"c1"}, {"c3", "c10", "c63"}, {"unknown"}, {"c70"}, {"nope"}, {"c5", "nope", "unknown"}}
	check := func(when string) {
		for _, cats := range queries {
			for _, reg := range []string{"", "R1"} {
				since := t0.Add(-30 * time.Minute)
				wt, wn := want("a3", reg, since, cats, "a1")
				if got := h.AccountSales("a3", "S1", reg, since, cats); got != wt {
					t.Errorf("%s: AccountSales %v %q = %+v, want %+v", when, cats, reg, got, wt)
				}
				if got := h.DistinctAccounts("S1", reg, since, cats, "a1"); got != wn {
					t.Errorf("%s: DistinctAccounts %v %q = %d, want %d", when, cats, reg, got, wn)
				}
			}
		}
	}
	for i := range 40 { // c0..c39 and c0..c73 by 7s: under 64 categories
		add(i)
	}
	if h.catsFull {
		t.Fatal("bits ran out before 64 categories")
	}
	check("with bits")
	for i := 40; i < 200; i++ {
		add(i)
	}
	if !h.catsFull {
		t.Fatal("81 categories and the bits did not run out")
	}
	check("past 64 categories")
}

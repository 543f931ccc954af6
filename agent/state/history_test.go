package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/policy"
)

// shinjuku replays the pattern of 2019-07-04: several accounts buying
// tobacco cartons at one register within the hour, plus ordinary sales,
// one of the accounts moving on to the next till, and sales at another
// store (as they would never reach this register: there only to prove
// that lookups keep to their store).
func shinjuku(t testing.TB, s *Store) {
	t.Helper()
	type row struct {
		min     int
		account string
		cat     string
		qty     int
		price   int64
		outcome policy.Outcome
		store   string
		reg     string
	}
	rows := []row{
		{0, "acct-1", "tobacco", 10, 5400, policy.Allow, "shinjuku-01", "r2"},
		{3, "acct-2", "tobacco", 10, 5400, policy.Allow, "shinjuku-01", "r2"},
		{5, "acct-2", "food", 2, 300, policy.Allow, "shinjuku-01", "r2"},
		{9, "acct-3", "tobacco", 20, 5400, policy.Deny, "shinjuku-01", "r2"},
		{12, "acct-1", "tobacco", 10, 5400, policy.Review, "shinjuku-01", "r2"},
		{14, "acct-4", "food", 1, 150, policy.Allow, "shinjuku-01", "r2"},
		{15, "acct-5", "tobacco", 1, 5400, policy.Allow, "shinjuku-01", "r1"}, // the next till
		{70, "acct-6", "e-cig", 3, 3000, policy.Allow, "shinjuku-01", "r2"},
		{16, "acct-1", "tobacco", 1, 5400, policy.Allow, "shinjuku-01", "r1"}, // acct-1 at the next till
		{17, "acct-1", "tobacco", 4, 5400, policy.Allow, "ikebukuro-02", "r1"},
		{18, "acct-8", "tobacco", 1, 5400, policy.Allow, "ikebukuro-02", "r2"},
	}
	for i, r := range rows {
		req := newSale(fmt.Sprint("s", i), r.account, t0.Add(time.Duration(r.min)*time.Minute), r.cat, r.qty, r.price)
		req.Store, req.Register = r.store, r.reg
		if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(r.outcome), ReplayKey: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistoryLookups(t *testing.T) {
	s, path := newStore(t)
	shinjuku(t, s)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	const shinjuku, ikebukuro = "shinjuku-01", "ikebukuro-02"
	acct := []struct {
		account, store, register string
		since                    time.Time
		cats                     []string
		want                     policy.Totals
	}{
		{"acct-1", shinjuku, "", at(0), []string{"tobacco"}, policy.Totals{Sales: 3, Amount: 113400, Quantity: 21}}, // both tills
		{"acct-1", shinjuku, "r2", at(0), []string{"tobacco"}, policy.Totals{Sales: 2, Amount: 108000, Quantity: 20}},
		{"acct-1", shinjuku, "r1", at(0), []string{"tobacco"}, policy.Totals{Sales: 1, Amount: 5400, Quantity: 1}},
		{"acct-1", shinjuku, "", at(1), []string{"tobacco"}, policy.Totals{Sales: 2, Amount: 59400, Quantity: 11}},
		{"acct-1", shinjuku, "", at(17), []string{"tobacco"}, policy.Totals{}}, // its sale at 17 is at the other store
		{"acct-1", ikebukuro, "", at(0), nil, policy.Totals{Sales: 1, Amount: 21600, Quantity: 4}},
		{"acct-1", ikebukuro, "r2", at(0), nil, policy.Totals{}},
		{"acct-2", shinjuku, "", at(0), nil, policy.Totals{Sales: 2, Amount: 54600, Quantity: 12}},
		{"acct-2", shinjuku, "", at(0), []string{"food"}, policy.Totals{Sales: 1, Amount: 600, Quantity: 2}},
		{"acct-2", shinjuku, "", at(0), []string{"food", "tobacco"}, policy.Totals{Sales: 2, Amount: 54600, Quantity: 12}},
		{"acct-2", shinjuku, "", time.Time{}, []string{"e-cig"}, policy.Totals{}},
		{"acct-3", shinjuku, "", at(0), nil, policy.Totals{}}, // denied: not spent
		{"nobody", shinjuku, "", at(0), nil, policy.Totals{}},
	}
	reg := []struct {
		store, register string
		since           time.Time
		cats            []string
		exclude         string
		want            int
	}{
		{shinjuku, "r2", at(0), []string{"tobacco"}, "", 3},       // acct-1, 2, 3 (denied attempt counts)
		{shinjuku, "r2", at(0), []string{"tobacco"}, "acct-1", 2}, // the payer is not counted
		{shinjuku, "r2", at(4), []string{"tobacco"}, "", 2},
		{shinjuku, "r2", at(0), []string{"tobacco", "e-cig"}, "", 4},
		{shinjuku, "r2", at(0), nil, "", 5},
		{shinjuku, "r1", at(0), nil, "", 2}, // acct-5 and acct-1
		{shinjuku, "", at(0), nil, "", 6},   // acct-1 to 6, acct-1 once across both tills
		{shinjuku, "", at(0), []string{"tobacco"}, "", 4},
		{shinjuku, "", at(0), []string{"tobacco"}, "acct-1", 3},
		{shinjuku, "", at(13), []string{"tobacco"}, "", 2}, // acct-5 and acct-1 at r1
		{shinjuku, "r9", at(0), nil, "", 0},
		{ikebukuro, "", at(0), nil, "", 2},
		{ikebukuro, "r2", at(0), nil, "", 1},
		{"ueno-03", "", at(0), nil, "", 0},
	}
	check := func(t *testing.T, s *Store) {
		for _, tc := range acct {
			if got := s.AccountSales(tc.account, tc.store, tc.register, tc.since, tc.cats); got != tc.want {
				t.Errorf("AccountSales(%s, %s/%s, %s, %v) = %+v, want %+v", tc.account, tc.store, tc.register, tc.since.Format("15:04"), tc.cats, got, tc.want)
			}
		}
		for _, tc := range reg {
			if got := s.DistinctAccounts(tc.store, tc.register, tc.since, tc.cats, tc.exclude); got != tc.want {
				t.Errorf("DistinctAccounts(%s/%s, %s, %v, %q) = %d, want %d", tc.store, tc.register, tc.since.Format("15:04"), tc.cats, tc.exclude, got, tc.want)
			}
		}
	}
	t.Run("live", func(t *testing.T) { check(t, s) })
	s.Close()
	t.Run("reloaded from the file", func(t *testing.T) { check(t, openT(t, path, testOptions())) })
}

func TestHistoryManyAccountsOverflowBuffer(t *testing.T) {
	s, _ := newStore(t)
	const n = 450 // more than the on-stack table of distinct accounts
	// Committed from 8 goroutines so the batches share fsyncs.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2*n; i += 8 {
				req := newSale(fmt.Sprint("s", i), fmt.Sprint("acct-", i%n), t0.Add(time.Duration(i)*time.Second), "tobacco", 1, 100)
				if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := s.DistinctAccounts("shinjuku-01", "r2", t0, nil, "acct-7"); got != n-1 {
		t.Errorf("DistinctAccounts = %d, want %d", got, n-1)
	}
}

func TestHistoryOutOfOrderCommits(t *testing.T) {
	s, _ := newStore(t)
	for _, min := range []int{10, 0, 5, 20, 15} {
		req := newSale(fmt.Sprint("s", min), "a1", t0.Add(time.Duration(min)*time.Minute), "tobacco", 1, 100)
		if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow)}); err != nil {
			t.Fatal(err)
		}
	}
	for since, want := range map[int]int{0: 5, 6: 3, 11: 2, 16: 1, 21: 0} {
		if got := s.AccountSales("a1", "shinjuku-01", "", t0.Add(time.Duration(since)*time.Minute), nil).Sales; got != want {
			t.Errorf("since +%dm: %d sales, want %d", since, got, want)
		}
	}
}

func TestHistoryLookupsDoNotAllocate(t *testing.T) {
	s, _ := newStore(t)
	shinjuku(t, s)
	cats := []string{"tobacco", "e-cig"}
	since := t0
	if n := testing.AllocsPerRun(100, func() {
		s.AccountSales("acct-1", "shinjuku-01", "", since, cats)
		s.AccountSales("acct-1", "shinjuku-01", "r2", since, cats)
		s.DistinctAccounts("shinjuku-01", "r2", since, cats, "acct-1")
		s.DistinctAccounts("shinjuku-01", "", since, cats, "acct-1")
		s.Denylisted("acct-1")
		s.Seen("k1")
		s.LastATC("acct-1")
	}); n != 0 {
		t.Errorf("lookups allocate %.1f times", n)
	}
}

func TestIDSet(t *testing.T) {
	for _, n := range []int{0, 1, 100, idSetMax, idSetMax + 1, 2000} {
		var s idSet
		for range 3 { // every id added three times
			for i := range n {
				s.add(uint32(i*7919) + 1)
			}
		}
		if s.len() != n {
			t.Errorf("%d distinct ids counted as %d", n, s.len())
		}
	}
}

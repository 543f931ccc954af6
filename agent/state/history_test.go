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
// tobacco cartons at one register within the hour, plus ordinary sales.
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
	acct := []struct {
		account string
		since   time.Time
		cats    []string
		want    policy.Totals
	}{
		{"acct-1", at(0), []string{"tobacco"}, policy.Totals{Sales: 2, Amount: 108000, Quantity: 20}},
		{"acct-1", at(1), []string{"tobacco"}, policy.Totals{Sales: 1, Amount: 54000, Quantity: 10}},
		{"acct-1", at(13), []string{"tobacco"}, policy.Totals{}},
		{"acct-2", at(0), nil, policy.Totals{Sales: 2, Amount: 54600, Quantity: 12}},
		{"acct-2", at(0), []string{"food"}, policy.Totals{Sales: 1, Amount: 600, Quantity: 2}},
		{"acct-2", at(0), []string{"food", "tobacco"}, policy.Totals{Sales: 2, Amount: 54600, Quantity: 12}},
		{"acct-2", time.Time{}, []string{"e-cig"}, policy.Totals{}},
		{"acct-3", at(0), nil, policy.Totals{}}, // denied: not spent
		{"nobody", at(0), nil, policy.Totals{}},
	}
	reg := []struct {
		store, register string
		since           time.Time
		cats            []string
		exclude         string
		want            int
	}{
		{"shinjuku-01", "r2", at(0), []string{"tobacco"}, "", 3},       // acct-1, 2, 3 (denied attempt counts)
		{"shinjuku-01", "r2", at(0), []string{"tobacco"}, "acct-1", 2}, // the payer is not counted
		{"shinjuku-01", "r2", at(4), []string{"tobacco"}, "", 2},
		{"shinjuku-01", "r2", at(0), []string{"tobacco", "e-cig"}, "", 4},
		{"shinjuku-01", "r2", at(0), nil, "", 5},
		{"shinjuku-01", "r1", at(0), nil, "", 1},
		{"shinjuku-01", "r9", at(0), nil, "", 0},
		{"ikebukuro-02", "r2", at(0), nil, "", 0},
	}
	check := func(t *testing.T, s *Store) {
		for _, tc := range acct {
			if got := s.AccountSales(tc.account, tc.since, tc.cats); got != tc.want {
				t.Errorf("AccountSales(%s, %s, %v) = %+v, want %+v", tc.account, tc.since.Format("15:04"), tc.cats, got, tc.want)
			}
		}
		for _, tc := range reg {
			if got := s.RegisterAccounts(tc.store, tc.register, tc.since, tc.cats, tc.exclude); got != tc.want {
				t.Errorf("RegisterAccounts(%s/%s, %s, %v, %q) = %d, want %d", tc.store, tc.register, tc.since.Format("15:04"), tc.cats, tc.exclude, got, tc.want)
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
	if got := s.RegisterAccounts("shinjuku-01", "r2", t0, nil, "acct-7"); got != n-1 {
		t.Errorf("RegisterAccounts = %d, want %d", got, n-1)
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
		if got := s.AccountSales("a1", t0.Add(time.Duration(since)*time.Minute), nil).Sales; got != want {
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
		s.AccountSales("acct-1", since, cats)
		s.RegisterAccounts("shinjuku-01", "r2", since, cats, "acct-1")
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

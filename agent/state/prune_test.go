package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// keyCounts counts the entries of every bucket, straight from the file.
func keyCounts(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { out[string(name)]++; return nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPruneRemovesWhatExpired(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	day := 24 * time.Hour
	// An old sale (8 days ago) with an EMV counter and a resolved review,
	// and a recent one.
	old := newSale("old", "emv-1", t0.Add(-8*day), "tobacco", 1, 5400)
	old.Payment.Kind, old.Payment.ATC = "emv-cpm", 3
	if _, err := s.Commit(ctx, Record{Request: old, Decision: decision(policy.Review), ReplayKey: "emv:emv-1:3", ReplayExpires: t0.Add(-8 * day).Add(time.Minute),
		Review: &Review{ID: "rv-old", SaleID: "old", Token: []byte("x"), Deadline: t0.Add(-8 * day)}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ResolveReview(ctx, "rv-old", event.ResolutionInfo{Action: event.Reject, At: t0.Add(-8 * day)}); err != nil {
		t.Fatal(err)
	}
	recent := newSale("new", "acct-2", t0.Add(-time.Hour), "tobacco", 1, 5400)
	if _, err := s.Commit(ctx, Record{Request: recent, Decision: decision(policy.Allow), ReplayKey: "pg1:new", ReplayExpires: t0.Add(time.Hour),
		Review: &Review{ID: "rv-open", SaleID: "new", Token: []byte("y"), Deadline: t0.Add(-7 * day)}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(t0)
	if err != nil {
		t.Fatal(err)
	}
	// seen mark, ATC, history entry and resolved review of the old sale
	if n != 4 {
		t.Errorf("Prune removed %d entries, want 4", n)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"old token mark gone", !s.Seen("emv:emv-1:3")},
		{"recent token mark kept", s.Seen("pg1:new")},
		{"old ATC gone", func() bool { _, ok := s.LastATC("emv-1"); return !ok }()},
		{"old sale out of the history", s.DistinctAccounts("shinjuku-01", "r2", time.Time{}, nil, "") == 1},
		{"old sale out of the store's list too", s.DistinctAccounts("shinjuku-01", "", time.Time{}, nil, "") == 1},
		{"recent sale kept", s.AccountSales("acct-2", "shinjuku-01", "", time.Time{}, nil).Sales == 1},
		{"resolved review gone", func() bool { _, ok, _ := s.Review("rv-old"); return !ok }()},
		{"open review kept, however old", func() bool { _, ok, _ := s.Review("rv-open"); return ok }()},
	}
	for _, c := range checks {
		if !c.ok {
			t.Error(c.name)
		}
	}
	// The outbox is not pruned: only HQ's ack removes events.
	if evs := pending(t, s); types(evs) != "1:decision 2:alert 3:resolution 4:decision" {
		t.Errorf("outbox %s", types(evs))
	}
	s.Close()
	s = openT(t, path, testOptions())
	if s.Seen("emv:emv-1:3") || s.DistinctAccounts("shinjuku-01", "r2", time.Time{}, nil, "") != 1 {
		t.Error("pruned entries came back after reopen")
	}
}

// TestFileStaysBounded runs a month of sales with daily pruning and HQ acks,
// and checks the number of stored entries levels off.
func TestFileStaysBounded(t *testing.T) {
	path := t.TempDir() + "/state.db"
	opts := testOptions()
	opts.Retention = 2 * 24 * time.Hour
	s := openT(t, path, opts)
	const perDay = 40
	var maxKeys int
	for day := range 12 {
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids []string
		)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < perDay; i += 4 {
					at := t0.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Minute)
					req := newSale(fmt.Sprint("d", day, "-", i), fmt.Sprint("acct-", day, "-", i%7), at, "tobacco", 1, 5400)
					ev, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "pg1:" + req.SaleID, ReplayExpires: at.Add(10 * time.Minute)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					ids = append(ids, ev.ID)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := s.Ack(ids...); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(t0.Add(time.Duration(day+1) * 24 * time.Hour)); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range keyCounts(t, s) {
			total += n
		}
		if day >= 3 && total > maxKeys {
			t.Errorf("day %d: %d keys, more than the %d of the days before: the file grows", day, total, maxKeys)
		}
		maxKeys = max(maxKeys, total)
	}
	if c := keyCounts(t, s); c[bHistory] > 3*perDay || c[bSeen] != 0 || c[bOutbox] != 0 {
		t.Errorf("entries left: %v", c)
	}
}

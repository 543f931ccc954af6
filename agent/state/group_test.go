package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// Eight writers commit concurrently (some with idempotency keys, some
// retrying a key already answered, some reusing a token); the file is
// closed and opened again, and every commit that returned nil is there
// exactly once: its event, its replay mark, its idempotency answer; every
// commit refused is not.
func TestGroupCommitEveryAnswerOnDisk(t *testing.T) {
	s, path := newStore(t)
	const writers, each = 8, 60
	type answered struct {
		ev  event.Event
		key string // replay key
		idk string // idempotency key, if any
	}
	var (
		mu       sync.Mutex
		ok       []answered
		refused  = map[string]bool{} // sale ids refused as replayed or idempotent
		wg       sync.WaitGroup
		txBefore = s.group.txs.Load()
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				req := newSale(id, fmt.Sprint("acct-", i%7), t0.Add(time.Duration(w*each+i)*time.Second), "tobacco", 1, 5400)
				rec := Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "pg1:" + id}
				if i%10 == 3 {
					// Every writer reuses one shared token: exactly one wins.
					rec.ReplayKey = fmt.Sprint("pg1:shared-", i)
				}
				if i%4 == 0 {
					// Writers w and w^1 share a key: one answer, one retry.
					rec.Idempotent = idem(fmt.Sprintf("idem-%d-%d", w/2, i), "fp", t0.Add(48*time.Hour))
				}
				if i%6 == 5 {
					rec.Decision = decision(policy.Deny)
				}
				ev, err := s.Commit(context.Background(), rec)
				mu.Lock()
				switch {
				case err == nil:
					a := answered{ev: ev, key: rec.ReplayKey}
					if rec.Idempotent != nil {
						a.idk = rec.Idempotent.Key
					}
					ok = append(ok, a)
				case errors.Is(err, ErrReplayed), errors.Is(err, ErrIdempotent):
					refused[id] = true
				default:
					t.Errorf("commit %s: %v", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	txs, calls := s.group.txs.Load()-txBefore, len(ok)+len(refused)
	t.Logf("%d commits (%d answered, %d refused) in %d transactions", calls, len(ok), len(refused), txs)
	if txs >= uint64(calls) {
		t.Errorf("%d transactions for %d concurrent commits: none was shared", txs, calls)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, testOptions())
	evs := pending(t, s)
	byID := map[string]event.Event{}
	sales := map[string]int{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: a gap or disorder", i, e.Seq)
		}
		byID[e.ID] = e
		if e.Type == event.Decision {
			sales[e.SaleID]++
		}
	}
	for _, a := range ok {
		if e, found := byID[a.ev.ID]; !found || e.SaleID != a.ev.SaleID || e.Type != event.Decision {
			t.Fatalf("answered commit %s (event %s) is not on disk after reopen", a.ev.SaleID, a.ev.ID)
		}
		if sales[a.ev.SaleID] != 1 {
			t.Fatalf("sale %s stored %d times", a.ev.SaleID, sales[a.ev.SaleID])
		}
		if !s.Seen(a.key) {
			t.Fatalf("token %s of answered sale %s not marked after reopen", a.key, a.ev.SaleID)
		}
		if a.idk != "" {
			ans, found, err := s.Answer(a.idk, t0)
			if err != nil || !found || ans.EventID != a.ev.ID {
				t.Fatalf("idempotency key %s: answer %+v %v %v, want event %s", a.idk, ans, found, err, a.ev.ID)
			}
		}
	}
	for id := range refused {
		if sales[id] != 0 {
			t.Fatalf("refused sale %s was stored", id)
		}
	}
	if len(sales) != len(ok) {
		t.Fatalf("%d decisions on disk, %d answered", len(sales), len(ok))
	}
	// Of each shared token exactly one sale won.
	for i := 3; i < each; i += 10 {
		won := 0
		for _, a := range ok {
			if a.key == fmt.Sprint("pg1:shared-", i) {
				won++
			}
		}
		if won != 1 {
			t.Errorf("shared token %d accepted %d times", i, won)
		}
	}
}

// batched holds the leader token while n writes queue, then lets them run
// as one batch; it returns their errors in order of fns.
func batched(t *testing.T, s *Store, fns ...func(*bolt.Tx) error) []error {
	t.Helper()
	<-s.group.token
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("panicked: %v", p)
				}
			}()
			errs[i] = s.write(fn)
		}()
	}
	for len(s.group.queued) < len(fns) {
		time.Sleep(time.Millisecond)
	}
	s.group.token <- struct{}{}
	wg.Wait()
	return errs
}

func put(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bMeta)).Put([]byte(key), []byte("v")) }
}

func has(t *testing.T, s *Store, key string) bool {
	t.Helper()
	var v []byte
	if err := s.db.View(func(tx *bolt.Tx) error { v = tx.Bucket([]byte(bMeta)).Get([]byte(key)); return nil }); err != nil {
		t.Fatal(err)
	}
	return v != nil
}

// A write that fails, or panics, inside a shared transaction gets its own
// error (or panic) back and leaves nothing; the others of its batch are
// committed in one transaction all the same.
func TestGroupCommitFailureIsolated(t *testing.T) {
	s, _ := newStore(t)
	boom := errors.New("boom")
	before := s.group.txs.Load()
	errs := batched(t, s,
		put("test-a"),
		func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte(bMeta)).Put([]byte("test-bad"), []byte("v")); err != nil {
				return err
			}
			return boom
		},
		put("test-b"),
		func(*bolt.Tx) error { panic("kaput") },
		put("test-c"),
	)
	if errs[0] != nil || errs[2] != nil || errs[4] != nil {
		t.Fatalf("good writes failed: %v", errs)
	}
	if !errors.Is(errs[1], boom) {
		t.Errorf("failing write got %v, want its own error", errs[1])
	}
	if errs[3] == nil || errs[3].Error() != "panicked: kaput" {
		t.Errorf("panicking write got %v, want its panic raised", errs[3])
	}
	for _, k := range []string{"test-a", "test-b", "test-c"} {
		if !has(t, s, k) {
			t.Errorf("%s not written", k)
		}
	}
	if has(t, s, "test-bad") {
		t.Error("the failed write's put is on disk")
	}
	if n := s.group.txs.Load() - before; n != 1 {
		t.Errorf("the 3 good writes took %d transactions, want 1", n)
	}
}

// A batch whose commit fails (here: past the file's size cap) fails every
// writer in it, and none of its writes is there.
func TestGroupCommitFailureFailsBatch(t *testing.T) {
	opts := testOptions()
	opts.MaxSize = 4 << 20
	s := openT(t, filepath.Join(t.TempDir(), "state.db"), opts)
	big := make([]byte, 8<<20)
	errs := batched(t, s,
		put("test-a"),
		put("test-b"),
		func(tx *bolt.Tx) error { return tx.Bucket([]byte(bMeta)).Put([]byte("test-big"), big) })
	for i, err := range errs {
		if err == nil {
			t.Errorf("write %d of a batch that could not commit returned nil", i)
		}
	}
	for _, k := range []string{"test-a", "test-b", "test-big"} {
		if has(t, s, k) {
			t.Errorf("%s written by a failed batch", k)
		}
	}
	// The store goes on: the next write commits.
	if err := s.write(put("test-after")); err != nil || !has(t, s, "test-after") {
		t.Fatalf("write after the failed batch: %v", err)
	}
}

package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/policy"
)

func idem(key, fp string, exp time.Time) *Idempotent {
	return &Idempotent{Key: key, Fingerprint: fp, Response: []byte(`{"outcome":"allow"}`), Expires: exp}
}

func TestCommitIdempotent(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	req := newSale("s1", "a1", t0, "food", 1, 200)
	ev, err := s.Commit(ctx, Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "pg1:cti-s1", Idempotent: idem("k1", "fp1", t0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	a, ok, err := s.Answer("k1", t0)
	if err != nil || !ok {
		t.Fatalf("Answer: %v %v", ok, err)
	}
	if a.Fingerprint != "fp1" || string(a.Response) != `{"outcome":"allow"}` || a.EventID != ev.ID {
		t.Errorf("answer %+v, event %s", a, ev.ID)
	}

	// The retry: same key, same token, its own sale id. Nothing is written.
	retry := newSale("s1-retry", "a1", t0.Add(time.Second), "food", 1, 200)
	retry.Payment.TokenID = "cti-s1"
	_, err = s.Commit(ctx, Record{Request: retry, Decision: decision(policy.Deny), Idempotent: idem("k1", "fp1", t0.Add(time.Hour))})
	if !errors.Is(err, ErrIdempotent) {
		t.Fatalf("retry commit: %v, want ErrIdempotent", err)
	}
	if evs, _ := s.Pending(0, 10); len(evs) != 1 {
		t.Errorf("outbox has %d events after the retry, want 1", len(evs))
	}
	if tot := s.AccountSales("a1", "shinjuku-01", "", t0.Add(-time.Hour), nil); tot.Sales != 1 {
		t.Errorf("history has %d sales of a1, want 1", tot.Sales)
	}

	// Expired keys are not answered, may be used again, and are pruned.
	if _, ok, _ := s.Answer("k1", t0.Add(time.Hour)); ok {
		t.Error("expired key answered")
	}
	if _, err := s.Commit(ctx, Record{Request: newSale("s2", "a2", t0.Add(2*time.Hour), "food", 1, 200), Decision: decision(policy.Allow),
		Idempotent: idem("k1", "fp2", t0.Add(3*time.Hour))}); err != nil {
		t.Fatalf("reuse of an expired key: %v", err)
	}
	if a, _, _ := s.Answer("k1", t0.Add(2*time.Hour)); a.Fingerprint != "fp2" {
		t.Errorf("reused key answers %+v", a)
	}
	if _, err := s.Commit(ctx, Record{Request: newSale("s3", "a3", t0, "food", 1, 200), Decision: decision(policy.Allow),
		Idempotent: idem("k3", "fp3", t0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(t0.Add(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("nothing pruned")
	}
	if _, ok, _ := s.Answer("k3", t0); ok {
		t.Error("expired key k3 survived Prune")
	}
	if _, ok, _ := s.Answer("k1", t0.Add(2*time.Hour)); !ok {
		t.Error("live key k1 pruned")
	}
}

func TestCommitIdempotentRejectsBadKeys(t *testing.T) {
	s, _ := newStore(t)
	long := make([]byte, MaxIdempotencyKey+1)
	for i := range long {
		long[i] = 'k'
	}
	for name, i := range map[string]*Idempotent{
		"empty key":     idem("", "fp", t0.Add(time.Hour)),
		"long key":      idem(string(long), "fp", t0.Add(time.Hour)),
		"no fp":         idem("k", "", t0.Add(time.Hour)),
		"no expiry":     idem("k", "fp", time.Time{}),
		"response text": {Key: "k", Fingerprint: "fp", Response: []byte("allow"), Expires: t0.Add(time.Hour)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Commit(context.Background(), Record{Request: newSale("s", "a", t0, "food", 1, 200), Decision: decision(policy.Allow), Idempotent: i})
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if evs, _ := s.Pending(0, 10); len(evs) != 0 {
		t.Errorf("%d events written by refused commits", len(evs))
	}
}

// TestCommitIdempotentRace: of several commits of one key at once (a
// caller retrying before its first answer came), exactly one is stored.
func TestCommitIdempotentRace(t *testing.T) {
	s, _ := newStore(t)
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		ok, already int
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newSale("s"+string(rune('a'+i)), "a1", t0, "food", 1, 200)
			_, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), Idempotent: idem("k", "fp", t0.Add(time.Hour))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrIdempotent):
				already++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || already != 7 {
		t.Errorf("%d stored, %d told the key is used; want 1 and 7", ok, already)
	}
	if evs, _ := s.Pending(0, 20); len(evs) != 1 {
		t.Errorf("outbox has %d events, want 1", len(evs))
	}
}

// TestMigrateSchema1: a state file written by the first released layout
// (testdata/schema1.db: three decisions, one held review) opens, gains the
// idempotency bucket, and keeps everything it held.
func TestMigrateSchema1(t *testing.T) {
	src, err := os.ReadFile("testdata/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, testOptions())
	if err != nil {
		t.Fatalf("open a schema 1 file: %v", err)
	}
	evs, err := s.Pending(0, 10)
	if err != nil || len(evs) != 5 { // 3 decisions, 2 alerts
		t.Fatalf("outbox after migration: %d events, %v", len(evs), err)
	}
	if !s.Seen("pg1:cti-s2") {
		t.Error("seen token lost")
	}
	if r, ok, err := s.Review("s2"); err != nil || !ok || string(r.Token) != "PG1:token" {
		t.Errorf("held review: %+v %v %v", r, ok, err)
	}
	if _, err := s.Commit(context.Background(), Record{Request: newSale("s4", "a4", t0.Add(time.Hour), "food", 1, 200), Decision: decision(policy.Allow),
		Idempotent: idem("k", "fp", t0.Add(2*time.Hour))}); err != nil {
		t.Fatalf("commit with a key after migration: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if v := getU64(tx.Bucket([]byte(bMeta)), kSchema); v != SchemaVersion {
			t.Errorf("schema %d after migration, want %d", v, SchemaVersion)
		}
		if tx.Bucket([]byte(bIdem)).Get([]byte("k")) == nil {
			t.Error("idempotency key not stored")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

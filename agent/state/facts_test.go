package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

func sharing() Options {
	o := testOptions()
	o.ShareFacts = true
	return o
}

// pendingFacts parses what the facts outbox holds.
func pendingFacts(t *testing.T, s *Store) ([]wire.Facts, []uint64) {
	t.Helper()
	own, err := s.PendingFacts(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var fs []wire.Facts
	var seqs []uint64
	for _, o := range own {
		f, err := wire.ParseFacts(wire.FactsTopic("shinjuku-01", "r2"), o.Payload)
		if err != nil {
			t.Fatalf("stored facts do not parse: %v", err)
		}
		fs, seqs = append(fs, f), append(seqs, o.Seq)
	}
	return fs, seqs
}

func TestCommitKeepsFacts(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "state.db"), sharing())
	ev := commit(t, s, newSale("s1", "a1", t0, "tobacco", 10, 580), policy.Allow)
	emv := newSale("s2", "emv-a", t0.Add(time.Second), "tobacco", 1, 580)
	emv.Payment = policy.Payment{Kind: paymentEMV, Account: "emv-a", ATC: 5}
	if _, err := s.Commit(context.Background(), Record{Request: emv, Decision: decision(policy.Deny), ReplayKey: "emv:emv-a:5"}); err != nil {
		t.Fatal(err)
	}
	fs, seqs := pendingFacts(t, s)
	if len(fs) != 2 || s.FactsBacklog() != 2 {
		t.Fatalf("%d facts (backlog %d), want 2", len(fs), s.FactsBacklog())
	}
	f := fs[0]
	if f.ID != ev.ID || f.Account != "a1" || f.Outcome != "allow" || f.Spent == nil || f.Spent.Key != "pg1:cti-s1" ||
		f.ATC != nil || len(f.Cats) != 1 || f.Cats[0] != (wire.FactCat{Cat: "tobacco", Qty: 10, Amount: 5800}) || !f.At.Equal(t0) {
		t.Errorf("facts of s1: %+v", f)
	}
	if g := fs[1]; g.ATC == nil || *g.ATC != 5 || g.Outcome != "deny" || g.Spent.Key != "emv:emv-a:5" {
		t.Errorf("facts of the EMV sale: %+v", g)
	}
	if err := s.FactsTaken(seqs[0]); err != nil {
		t.Fatal(err)
	}
	if fs, _ := pendingFacts(t, s); len(fs) != 1 || fs[0].Account != "emv-a" {
		t.Fatalf("after the first was taken: %+v", fs)
	}

	// Without a broker link nothing is kept: nothing would take it.
	quiet, _ := newStore(t)
	commit(t, quiet, newSale("s1", "a1", t0, "tobacco", 10, 580), policy.Allow)
	if n := quiet.FactsBacklog(); n != 0 {
		t.Errorf("facts kept without ShareFacts: %d", n)
	}
}

func peerFacts(id string, at time.Time) wire.Facts {
	atc := uint32(5)
	return wire.Facts{ID: "shinjuku-01/r1/e1/" + id, Store: "shinjuku-01", Register: "r1", At: at, Outcome: "allow",
		Account: "emv-b", Spent: &wire.Spent{Key: "emv:emv-b:5", Until: at.Add(time.Hour)}, ATC: &atc,
		Cats: []wire.FactCat{{Cat: "tobacco", Qty: 10, Amount: 5800}}}
}

func TestApplyFacts(t *testing.T) {
	s, path := newStore(t)
	f := peerFacts("1", t0)
	for i, want := range []bool{true, false} { // the second is a redelivery
		fresh, err := s.ApplyFacts(f, t0.Add(time.Second))
		if err != nil || fresh != want {
			t.Fatalf("apply #%d: fresh %v err %v, want %v", i+1, fresh, err, want)
		}
	}
	check := func(s *Store, sales int, last time.Time) {
		t.Helper()
		if !s.Seen("emv:emv-b:5") {
			t.Error("peer's token not marked seen")
		}
		if v, ok := s.LastATC("emv-b"); !ok || v != 5 {
			t.Errorf("ATC %d %v, want 5", v, ok)
		}
		if got := s.AccountSales("emv-b", "shinjuku-01", "", t0.Add(-time.Hour), []string{"tobacco"}); got.Sales != sales || got.Quantity != 10*sales || got.Amount != 5800*int64(sales) {
			t.Errorf("peer sales in the account's totals: %+v, want %d (each applied once)", got, sales)
		}
		if n := s.DistinctAccounts("shinjuku-01", "r1", t0.Add(-time.Hour), nil, ""); n != 1 {
			t.Errorf("accounts at the peer register: %d, want 1", n)
		}
		if got := s.LastPeerFact(); !got.Equal(last) {
			t.Errorf("last peer fact %v, want %v", got, last)
		}
	}
	check(s, 1, t0)

	// The peer's token is spent here too, and a lower counter is refused
	// by the same check as an own one.
	req := newSale("s9", "emv-b", t0.Add(2*time.Second), "tobacco", 1, 580)
	if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "emv:emv-b:5"}); !errors.Is(err, ErrReplayed) {
		t.Errorf("commit of the peer's token: %v, want ErrReplayed", err)
	}
	// A lower counter from another peer does not lower the mark.
	low := peerFacts("2", t0.Add(time.Second))
	*low.ATC, low.Spent.Key = 3, "emv:emv-b:3"
	if _, err := s.ApplyFacts(low, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.LastATC("emv-b"); v != 5 {
		t.Errorf("ATC lowered to %d by an older counter", v)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, testOptions())
	if fresh, err := s.ApplyFacts(f, t0.Add(3*time.Second)); err != nil || fresh {
		t.Errorf("redelivery after reopen applied again: %v %v", fresh, err)
	}
	check(s, 2, t0.Add(time.Second))

	// Pruned with the same window as own history.
	later := t0.Add(7*24*time.Hour + time.Minute)
	if _, err := s.Prune(later); err != nil {
		t.Fatal(err)
	}
	if got := s.AccountSales("emv-b", "shinjuku-01", "", time.Time{}, nil); got.Sales != 0 {
		t.Errorf("peer sales survive the retention: %+v", got)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{bPeerFacts, bPeerHistory} {
			if n := tx.Bucket([]byte(b)).Stats().KeyN; n != 0 {
				t.Errorf("%s: %d entries after the retention", b, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Facts older than the retention are not applied at all.
	if fresh, err := s.ApplyFacts(peerFacts("3", t0), later); err != nil || fresh {
		t.Errorf("stale facts applied: %v %v", fresh, err)
	}
}

func TestApplyFactsRefusesNonPeers(t *testing.T) {
	s, _ := newStore(t)
	own := peerFacts("1", t0)
	own.Register, own.ID = "r2", "shinjuku-01/r2/e1/1"
	other := peerFacts("1", t0)
	other.Store, other.ID = "shibuya-02", "shibuya-02/r1/e1/1"
	for _, f := range []wire.Facts{own, other} {
		if _, err := s.ApplyFacts(f, t0); !errors.Is(err, ErrNotPeer) {
			t.Errorf("%s: %v, want ErrNotPeer", f.ID, err)
		}
	}
	if s.Seen("emv:emv-b:5") {
		t.Error("a refused fact marked its token")
	}
}

// TestMigrateSchema2: a schema 2 file (testdata/schema2.db: two decisions)
// gains the facts buckets and keeps its history.
func TestMigrateSchema2(t *testing.T) {
	src, err := os.ReadFile("testdata/schema2.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, path, sharing())
	if got := s.AccountSales("a1", "shinjuku-01", "", time.Time{}, nil); got.Sales != 1 || got.Quantity != 10 {
		t.Errorf("history after migration: %+v", got)
	}
	if !s.Seen("pg1:cti-s2") {
		t.Error("seen token lost")
	}
	commit(t, s, newSale("s3", "a3", t0.Add(time.Hour), "food", 1, 200), policy.Allow)
	if _, err := s.ApplyFacts(peerFacts("1", t0), t0); err != nil {
		t.Fatal(err)
	}
	if n := s.FactsBacklog(); n != 1 {
		t.Errorf("facts outbox after migration: %d, want 1", n)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := getU64(tx.Bucket([]byte(bMeta)), kSchema); v != SchemaVersion {
			t.Errorf("schema %d after migration, want %d", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

func pending(t testing.TB, s *Store) []event.Event {
	t.Helper()
	evs, err := s.Pending(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func types(evs []event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%d:%s ", e.Seq, e.Type)
	}
	return strings.TrimSpace(b.String())
}

func TestCommitOutcomes(t *testing.T) {
	tests := []struct {
		outcome policy.Outcome
		review  bool
		want    string // outbox after the commit
	}{
		{policy.Allow, false, "1:decision"},
		{policy.Review, true, "1:decision 2:alert"},
		{policy.Deny, false, "1:decision 2:alert"},
	}
	for _, tc := range tests {
		t.Run(string(tc.outcome), func(t *testing.T) {
			s, _ := newStore(t)
			req := newSale("s1", "a1", t0, "tobacco", 5, 5400)
			rec := Record{Request: req, Decision: decision(tc.outcome), ReplayKey: "pg1:cti-s1", Detail: "scanner r2"}
			if tc.review {
				rec.Review = &Review{ID: "rv1", SaleID: "s1", Token: []byte("PG1:6BFOXN"), Created: t0, Deadline: t0.Add(5 * time.Minute)}
			}
			ev, err := s.Commit(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != event.Decision || ev.Request != req || ev.Decision.Outcome != tc.outcome || ev.Detail != "scanner r2" {
				t.Errorf("returned event %+v", ev)
			}
			evs := pending(t, s)
			if got := types(evs); got != tc.want {
				t.Fatalf("outbox %q, want %q", got, tc.want)
			}
			if evs[0].ID != ev.ID || evs[0].Request.Lines[0].Quantity != 5 {
				t.Errorf("stored event differs: %+v", evs[0])
			}
			if len(evs) == 2 && (evs[1].SaleID != "s1" || evs[1].Decision.Rules[0].Reason != "tobacco cartons 5 > limit 2") {
				t.Errorf("alert %+v", evs[1])
			}
			if !s.Seen("pg1:cti-s1") {
				t.Error("token not marked")
			}
			r, ok, err := s.Review("rv1")
			if err != nil || ok != tc.review || (ok && string(r.Token) != "PG1:6BFOXN") {
				t.Errorf("review hold: %+v %v %v", r, ok, err)
			}
			// Denied sales do not add to the account's spending but do
			// count as an account seen at the register.
			wantSales := 1
			if tc.outcome == policy.Deny {
				wantSales = 0
			}
			if got := s.AccountSales("a1", "shinjuku-01", "", t0, nil).Sales; got != wantSales {
				t.Errorf("AccountSales = %d, want %d", got, wantSales)
			}
			if got := s.DistinctAccounts("shinjuku-01", "r2", t0, nil, ""); got != 1 {
				t.Errorf("RegisterAccounts = %d, want 1", got)
			}
		})
	}
}

func TestCommitRejectsBadRecords(t *testing.T) {
	s, _ := newStore(t)
	req := newSale("s1", "a1", t0, "tobacco", 1, 100)
	emv := newSale("s2", "a2", t0, "tobacco", 1, 100)
	emv.Payment.Kind, emv.Payment.ATC = "emv-cpm", -1
	noSale := newSale("", "a1", t0, "tobacco", 1, 100)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		rec  Record
		want string
	}{
		{"no request", context.Background(), Record{Decision: decision(policy.Allow)}, "request and decision are required"},
		{"no decision", context.Background(), Record{Request: req}, "request and decision are required"},
		{"bad ATC", context.Background(), Record{Request: emv, Decision: decision(policy.Allow)}, "EMV ATC -1 out of range"},
		{"review without token", context.Background(), Record{Request: req, Decision: decision(policy.Review), Review: &Review{ID: "x", SaleID: "s1", Deadline: t0}}, "held token is required"},
		{"no sale id", context.Background(), Record{Request: noSale, Decision: decision(policy.Allow)}, "saleId"},
		{"cancelled", cancelled, Record{Request: req, Decision: decision(policy.Allow)}, "context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Commit(tc.ctx, tc.rec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Commit: %v, want %q", err, tc.want)
			}
		})
	}
	if evs := pending(t, s); len(evs) != 0 {
		t.Errorf("rejected records left events: %s", types(evs))
	}
}

func TestCommitReplaySequential(t *testing.T) {
	s, path := newStore(t)
	commit(t, s, newSale("s1", "a1", t0, "tobacco", 1, 5400), policy.Allow)
	again := newSale("s2", "a1", t0.Add(time.Minute), "tobacco", 1, 5400)
	again.Payment.TokenID = "cti-s1" // the screenshot of the same QR
	_, err := s.Commit(context.Background(), Record{Request: again, Decision: decision(policy.Allow), ReplayKey: "pg1:cti-s1"})
	if !errors.Is(err, ErrReplayed) {
		t.Fatalf("second commit of a token: %v, want ErrReplayed", err)
	}
	if got := s.AccountSales("a1", "shinjuku-01", "", t0, nil).Sales; got != 1 {
		t.Errorf("the refused commit changed the history: %d sales", got)
	}
	s.Close()
	// The mark survives a restart.
	s2 := openT(t, path, testOptions())
	if !s2.Seen("pg1:cti-s1") || s2.Seen("pg1:cti-other") {
		t.Error("Seen after reopen is wrong")
	}
	if _, err := s2.Commit(context.Background(), Record{Request: again, Decision: decision(policy.Allow), ReplayKey: "pg1:cti-s1"}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay after reopen: %v", err)
	}
	if evs := pending(t, s2); types(evs) != "1:decision" {
		t.Errorf("outbox %s", types(evs))
	}
}

func TestCommitConcurrentSameToken(t *testing.T) {
	s, _ := newStore(t)
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     int
		refused int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newSale(fmt.Sprint("s", i), fmt.Sprint("a", i), t0, "tobacco", 1, 5400)
			_, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "pg1:same"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrReplayed):
				refused++
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || refused != n-1 {
		t.Fatalf("%d commits won and %d were refused; want exactly 1 winner", won, refused)
	}
	if evs := pending(t, s); len(evs) != 1 {
		t.Errorf("outbox holds %d events", len(evs))
	}
	if got := s.DistinctAccounts("shinjuku-01", "r2", t0, nil, ""); got != 1 {
		t.Errorf("history has %d accounts, want the winner's only", got)
	}
}

func TestCommitConcurrentDistinct(t *testing.T) {
	s, _ := newStore(t)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := policy.Allow
			if i%4 == 0 {
				o = policy.Deny
			}
			req := newSale(fmt.Sprint("s", i), fmt.Sprint("a", i), t0.Add(time.Duration(i)*time.Second), "tobacco", 1, 5400)
			if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(o), ReplayKey: fmt.Sprint("pg1:", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs := pending(t, s)
	if len(evs) != n+n/4 {
		t.Fatalf("%d events, want %d", len(evs), n+n/4)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: gaps or disorder", i, e.Seq)
		}
	}
	if got := s.DistinctAccounts("shinjuku-01", "r2", t0, nil, ""); got != n {
		t.Errorf("RegisterAccounts = %d, want %d", got, n)
	}
}

func TestCommitEMVCounter(t *testing.T) {
	s, _ := newStore(t)
	steps := []struct {
		atc      int
		replayed bool
		last     uint32
	}{
		{5, false, 5},
		{5, true, 5},  // the same QR again
		{4, true, 5},  // an older QR of the account
		{9, false, 9}, // counters may skip
		{10, false, 10},
	}
	for i, st := range steps {
		req := newSale(fmt.Sprint("s", i), "emv-acct", t0.Add(time.Duration(i)*time.Minute), "tobacco", 1, 5400)
		req.Payment.Kind, req.Payment.ATC = "emv-cpm", st.atc
		_, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow)})
		if st.replayed != errors.Is(err, ErrReplayed) || (!st.replayed && err != nil) {
			t.Fatalf("step %d ATC %d: %v (want replayed=%v)", i, st.atc, err, st.replayed)
		}
		if last, ok := s.LastATC("emv-acct"); !ok || last != st.last {
			t.Fatalf("step %d: LastATC = %d %v, want %d", i, last, ok, st.last)
		}
	}
	if _, ok := s.LastATC("other"); ok {
		t.Error("LastATC of an unknown account")
	}
}

func TestOutboxSurvivesReopenInOrder(t *testing.T) {
	s, path := newStore(t)
	var ids []string
	for i := range 10 {
		o := policy.Allow
		if i == 3 {
			o = policy.Review
		}
		ids = append(ids, commit(t, s, newSale(fmt.Sprint("s", i), "a1", t0.Add(time.Duration(i)*time.Minute), "tobacco", 1, 100), o).ID)
	}
	if err := s.Ack(ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	before := pending(t, s)
	s.Close()
	s2 := openT(t, path, testOptions())
	after := pending(t, s2)
	if types(before) != types(after) || len(after) != 9 || after[0].Seq != 3 {
		t.Fatalf("outbox before close %q, after reopen %q", types(before), types(after))
	}
	// Pending pages by seq.
	page, err := s2.Pending(5, 3)
	if err != nil || types(page) != "6:decision 7:decision 8:decision" {
		t.Fatalf("Pending(5, 3) = %q, %v", types(page), err)
	}
	depth, oldest := s2.OutboxStats()
	if depth != 9 || !oldest.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("OutboxStats = %d, %v", depth, oldest)
	}
	next := commit(t, s2, newSale("s99", "a1", t0.Add(time.Hour), "tobacco", 1, 100), policy.Allow)
	if next.Seq != 12 {
		t.Errorf("seq after reopen %d, want 12", next.Seq)
	}
}

func TestAckIsIdempotent(t *testing.T) {
	s, _ := newStore(t)
	a := commit(t, s, newSale("s1", "a1", t0, "tobacco", 1, 100), policy.Deny)
	b := commit(t, s, newSale("s2", "a1", t0, "tobacco", 1, 100), policy.Allow)
	otherFile, _ := newStore(t)
	foreign := commit(t, otherFile, newSale("s1", "a1", t0, "tobacco", 1, 100), policy.Allow)
	steps := []struct {
		ids   []string
		depth int
	}{
		{nil, 3},
		{[]string{"garbage", "shinjuku-01/r2/x/1", foreign.ID}, 3}, // not ours: ignored
		{[]string{a.ID}, 2},
		{[]string{a.ID, a.ID}, 2}, // again: harmless
		{[]string{b.ID, strings.TrimSuffix(a.ID, "1") + "2"}, 0},
	}
	for i, st := range steps {
		if err := s.Ack(st.ids...); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if depth, _ := s.OutboxStats(); depth != st.depth {
			t.Fatalf("step %d: depth %d, want %d", i, depth, st.depth)
		}
	}
	if depth, oldest := s.OutboxStats(); depth != 0 || !oldest.IsZero() {
		t.Errorf("empty outbox stats %d %v", depth, oldest)
	}
}

func TestOutboxCapDropsOldestNonAlerts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	opts := testOptions()
	opts.OutboxCap = 4
	s := openT(t, path, opts)
	outcomes := []policy.Outcome{policy.Allow, policy.Deny, policy.Allow, policy.Allow, policy.Review, policy.Allow}
	for i, o := range outcomes {
		commit(t, s, newSale(fmt.Sprint("s", i), "a1", t0, "tobacco", 1, 100), o)
	}
	// seq: 1 d(allow) 2 d(deny) 3 alert 4 d 5 d 6 d(review) 7 alert 8 d
	got := types(pending(t, s))
	want := "3:alert 6:decision 7:alert 8:decision"
	if got != want {
		t.Fatalf("outbox %q, want %q", got, want)
	}
	if d := s.Dropped(); d != 4 {
		t.Errorf("Dropped = %d, want 4", d)
	}
	// Alerts are never dropped, even past the cap.
	for i := range 3 {
		if _, err := s.Append(context.Background(), event.Event{Type: event.Alert, At: t0, SaleID: "x",
			Request: newSale("x", "a", t0, "tobacco", 1, 1), Decision: decision(policy.Deny)}); err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
	}
	got = types(pending(t, s))
	if want := "3:alert 7:alert 9:alert 10:alert 11:alert"; got != want {
		t.Fatalf("outbox %q, want %q", got, want)
	}
	s.Close()
	s2 := openT(t, path, opts)
	if d := s2.Dropped(); d != 6 {
		t.Errorf("Dropped after reopen = %d, want 6", d)
	}
	if depth, _ := s2.OutboxStats(); depth != 5 {
		t.Errorf("depth %d", depth)
	}
}

func TestAppendValidates(t *testing.T) {
	s, _ := newStore(t)
	ev, err := s.Append(context.Background(), event.Event{Type: event.Refusal, At: t0, Detail: "policy version 3 refused"})
	if err != nil || ev.Seq != 1 || ev.Store != "shinjuku-01" || ev.Register != "r2" {
		t.Fatalf("Append refusal: %+v %v", ev, err)
	}
	for _, bad := range []event.Event{
		{Type: event.Refusal, At: t0},
		{Type: "gossip", At: t0, Detail: "x"},
		{Type: event.Refusal, Detail: "x"},
	} {
		if _, err := s.Append(context.Background(), bad); err == nil {
			t.Errorf("Append(%+v) accepted", bad)
		}
	}
	if evs := pending(t, s); len(evs) != 1 {
		t.Errorf("outbox %s", types(evs))
	}
}

func TestPendingReportsDamagedEntry(t *testing.T) {
	s, _ := newStore(t)
	commit(t, s, newSale("s1", "a1", t0, "tobacco", 1, 100), policy.Allow)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bOutbox)).Put(eventKey(2), []byte(`{"id":"half`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := s.Pending(0, 1); err != nil || len(evs) != 1 {
		t.Fatalf("reading before the damage: %v", err)
	}
	_, err = s.Pending(0, 10)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "outbox entry 0000000000000002") {
		t.Fatalf("Pending over a damaged entry: %v", err)
	}
}

// A caller that gives up while its commit waits for the write lock gets
// nothing written: no decision event, no history, no used token.
func TestCommitAbandonedWhileWaiting(t *testing.T) {
	s, _ := newStore(t)
	holding, release := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error {
		close(holding)
		<-release
		return nil
	})
	<-holding
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, Record{Request: newSale("s1", "a1", t0, "tobacco", 1, 5400), Decision: decision(policy.Allow), ReplayKey: "pg1:cti-s1"})
		done <- err
	}()
	for s.group.writers.Load() == 0 { // past Commit's first check, waiting for the lock
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after its caller left: %v, want context.Canceled", err)
	}
	if evs := pending(t, s); len(evs) != 0 {
		t.Errorf("abandoned commit left events: %s", types(evs))
	}
	if s.Seen("pg1:cti-s1") || s.AccountSales("a1", "shinjuku-01", "", t0, nil).Sales != 0 {
		t.Error("abandoned commit used the token or stored the sale")
	}
	// The token is still good for a sale somebody completes.
	if _, err := s.Commit(context.Background(), Record{Request: newSale("s2", "a1", t0, "tobacco", 1, 5400), Decision: decision(policy.Allow), ReplayKey: "pg1:cti-s1"}); err != nil {
		t.Fatalf("commit after the abandoned one: %v", err)
	}
}

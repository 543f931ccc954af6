package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

var t0 = time.Date(2019, 7, 3, 14, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Store: "shinjuku-01", Register: "r2"}
}

func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	return openT(t, path, testOptions()), path
}

// sale builds a request: n lines of category cat at price, paid by account.
func newSale(id, account string, at time.Time, cat string, qty int, price int64) *policy.Request {
	return &policy.Request{
		SaleID: id, Store: "shinjuku-01", Register: "r2", At: at,
		Lines:   []policy.Line{{JAN: "4901234567894", Category: cat, Quantity: qty, UnitPrice: price}},
		Payment: policy.Payment{Kind: "pg1", Issuer: "7pay", Account: account, TokenID: "cti-" + id},
	}
}

func decision(o policy.Outcome) *policy.Decision {
	d := &policy.Decision{Outcome: o, Policy: policy.PolicyRef{Name: "p", Version: 1}}
	if o != policy.Allow {
		d.Rules = []policy.Fired{{ID: "r", Action: string(o), Mode: "enforce", Reason: "tobacco cartons 5 > limit 2"}}
	}
	return d
}

func commit(t testing.TB, s *Store, req *policy.Request, o policy.Outcome) event.Event {
	t.Helper()
	ev, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(o), ReplayKey: "pg1:" + req.Payment.TokenID})
	if err != nil {
		t.Fatalf("Commit %s: %v", req.SaleID, err)
	}
	return ev
}

func TestOpenCreatesAndReopens(t *testing.T) {
	s, path := newStore(t)
	ev := commit(t, s, newSale("s1", "a1", t0, "tobacco", 2, 5400), policy.Allow)
	if !strings.HasPrefix(ev.ID, "shinjuku-01/r2/") || !strings.HasSuffix(ev.ID, "/1") || ev.Seq != 1 {
		t.Errorf("first event id %q seq %d", ev.ID, ev.Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, path, testOptions())
	ev2 := commit(t, s2, newSale("s2", "a1", t0.Add(time.Minute), "tobacco", 1, 5400), policy.Allow)
	if ev2.Seq != 2 || !strings.HasPrefix(ev2.ID, strings.TrimSuffix(ev.ID, "1")) {
		t.Errorf("after reopen: id %q seq %d, want same epoch and seq 2", ev2.ID, ev2.Seq)
	}
	if got := s2.AccountSales("a1", "shinjuku-01", "", t0, nil); got.Sales != 2 || got.Amount != 3*5400 {
		t.Errorf("history after reopen: %+v", got)
	}
	// A new file gets a new epoch, so its ids never collide with the old one's.
	s3, _ := newStore(t)
	ev3 := commit(t, s3, newSale("s1", "a1", t0, "tobacco", 2, 5400), policy.Allow)
	if ev3.ID == ev.ID {
		t.Errorf("two state files produced the same event id %q", ev.ID)
	}
}

func TestOpenOptionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Register: "r"}, {Store: "s"}, {Store: "a/b", Register: "r"}} {
		if _, err := Open(filepath.Join(dir, "x.db"), o); err == nil || !strings.Contains(err.Error(), "must be non-empty") {
			t.Errorf("Open(%+v) = %v", o, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing", "x.db"), testOptions()); err == nil || !strings.Contains(err.Error(), filepath.Join("missing", "x.db")) {
		t.Errorf("Open in a missing directory: %v", err)
	}
}

func TestOpenInUse(t *testing.T) {
	s, path := newStore(t)
	_ = s
	opts := testOptions()
	opts.LockTimeout = 50 * time.Millisecond
	_, err := Open(path, opts)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v, want ErrInUse naming the file", err)
	}
}

func TestOpenWrongRegister(t *testing.T) {
	s, path := newStore(t)
	s.Close()
	opts := testOptions()
	opts.Register = "r3"
	_, err := Open(path, opts)
	if !errors.Is(err, ErrWrongRegister) || !strings.Contains(err.Error(), "shinjuku-01/r2") {
		t.Fatalf("Open as another register: %v", err)
	}
}

// writeBolt creates a plain bbolt file shaped by fn, as an older build or
// another program would have left it.
func writeBolt(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenSchemaVersions(t *testing.T) {
	metaWith := func(version uint64) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			m, err := tx.CreateBucket([]byte(bMeta))
			if err != nil {
				return err
			}
			if err := m.Put([]byte(kSchema), u64(version)); err != nil {
				return err
			}
			// what a development build kept: an outbox of unsent events
			o, err := tx.CreateBucket([]byte("outbox"))
			if err != nil {
				return err
			}
			return o.Put(u64(1), []byte(`{"id":"old"}`))
		}
	}
	tests := []struct {
		name  string
		setup func(tx *bolt.Tx) error
		want  error
		say   string
	}{
		{"older schema", metaWith(0), ErrSchema, fmt.Sprintf("schema version 0 is older than %d and cannot be migrated", SchemaVersion)},
		{"newer schema", metaWith(SchemaVersion + 1), ErrSchema, "written by a newer posguard"},
		{"meta without version", func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte(bMeta)); return err }, ErrCorrupt, "no schema version"},
		{"foreign bbolt file", func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }, ErrNotState, `no "meta" bucket`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeBolt(t, tc.setup)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(path, testOptions())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v\nwant %v saying %q and naming the file", err, tc.want, tc.say)
			}
			// The defined behaviour is "refuse and leave the file as it
			// was", so nothing in it (an unsent outbox) is lost.
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(before) != string(after) {
				t.Error("the refused file was modified")
			}
		})
	}
}

func TestOpenCorruptFiles(t *testing.T) {
	// A real state file with content, to damage in different ways.
	s, good := newStore(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 200; i += 8 {
				req := newSale(fmt.Sprint("s", i), fmt.Sprint("acct-", i%17), t0.Add(time.Duration(i)*time.Second), "tobacco", 1, 5400)
				if _, err := s.Commit(context.Background(), Record{Request: req, Decision: decision(policy.Allow), ReplayKey: "k" + req.SaleID}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := s.PutReview(context.Background(), Review{ID: "rv1", SaleID: "s1", Token: []byte("PG1:X"), Deadline: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePolicy([]byte("bundle"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "E", Seq: 1}, t0, []string{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"garbage", func(b []byte) []byte {
			g := make([]byte, 64<<10)
			for i := range g {
				g[i] = byte(i*7 + i>>8)
			}
			return g
		}},
		{"truncated to nothing", func(b []byte) []byte { return nil }},
		{"truncated to 100 bytes", func(b []byte) []byte { return b[:100] }},
		{"truncated to one page", func(b []byte) []byte { return b[:page] }},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2/page*page] }},
		{"both meta pages zeroed", func(b []byte) []byte {
			clear(b[:2*page])
			return b
		}},
		{"data pages overwritten", func(b []byte) []byte {
			for i := 2 * page; i < len(b); i++ {
				b[i] = 0xA5
			}
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, tc.damage(append([]byte(nil), orig...)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, testOptions())
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a damaged file")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("error is not ErrCorrupt naming the file: %v", err)
			}
			t.Logf("%v", err)
		})
	}

	// Every page the file uses, scrambled one at a time.
	var used []int
	db, err := bolt.Open(good, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "leaf" || info.Type == "branch" || info.Type == "freelist" {
				used = append(used, id)
			}
		}
	})
	db.Close()
	if err != nil || len(used) < 3 {
		t.Fatalf("listing pages: %v (%d in use)", err, len(used))
	}
	t.Logf("scrambling each of %d pages in use", len(used))
	for _, id := range used {
		b := append([]byte(nil), orig...)
		for i := id * page; i < (id+1)*page; i++ {
			b[i] ^= byte(i*31 + 7)
		}
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, testOptions())
		if err == nil {
			s.Close()
			t.Errorf("page %d scrambled: Open accepted the file", id)
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("page %d scrambled: %v", id, err)
		}
	}
}

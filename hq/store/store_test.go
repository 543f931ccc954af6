package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

var t0 = time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)

// backends runs f against each backend: bbolt always, PostgreSQL when there
// is one (always in CI).
func backends(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("bolt", func(t *testing.T) {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := OpenPostgres(context.Background(), testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s)
	})
}

func decision(store, reg string, seq uint64, at time.Time, account string, out policy.Outcome) event.Event {
	sale := fmt.Sprintf("sale-%d", seq)
	return event.Event{
		ID: event.ID(store, reg, "e1", seq), Seq: seq, Type: event.Decision,
		Store: store, Register: reg, At: at, SaleID: sale,
		Request:  &policy.Request{SaleID: sale, Store: store, Register: reg, At: at, Payment: policy.Payment{Kind: "pg1", Account: account}},
		Decision: &policy.Decision{Outcome: out, Policy: policy.PolicyRef{Name: "p", Version: 1}},
	}
}

func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func TestSaveEventsOnce(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		a := decision("s1", "r1", 1, t0, "acct-a", policy.Allow)
		b := decision("s1", "r1", 2, t0.Add(time.Minute), "acct-b", policy.Deny)
		n, err := s.SaveEvents(ctx, []event.Event{a, b})
		if err != nil || n != 2 {
			t.Fatalf("first save: inserted %d, err %v; want 2, nil", n, err)
		}
		// A redelivery after a lost ack: same ids again, plus one new.
		c := decision("s1", "r1", 3, t0.Add(2*time.Minute), "acct-a", policy.Review)
		n, err = s.SaveEvents(ctx, []event.Event{b, a, c})
		if err != nil || n != 1 {
			t.Fatalf("redelivery: inserted %d, err %v; want 1, nil", n, err)
		}
		got, err := s.Events(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{a.ID, b.ID, c.ID}; !slices.Equal(ids(got), want) {
			t.Fatalf("events = %v, want %v", ids(got), want)
		}
		if got[1].Decision.Outcome != policy.Deny || got[1].Request.Payment.Account != "acct-b" {
			t.Fatalf("stored event lost its content: %+v", got[1])
		}
	})
}

func TestSaveEventsConcurrentDuplicates(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var evs []event.Event
		for i := 1; i <= 50; i++ {
			evs = append(evs, decision("s1", "r1", uint64(i), t0.Add(time.Duration(i)*time.Second), "a", policy.Allow))
		}
		// Two HQ instances receiving the same redelivered batch at once.
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := s.SaveEvents(ctx, evs)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		got, err := s.Events(ctx, Query{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 50 || total != 50 {
			t.Fatalf("stored %d events, inserted counts summed to %d; want 50 and 50", len(got), total)
		}
	})
}

func TestEventsQuery(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		e1 := decision("s1", "r1", 1, t0, "acct-a", policy.Allow)
		e2 := decision("s1", "r2", 1, t0.Add(time.Minute), "acct-b", policy.Deny)
		e3 := decision("s2", "r1", 1, t0.Add(2*time.Minute), "acct-a", policy.Review)
		alert := e2
		alert.ID, alert.Seq, alert.Type = event.ID("s1", "r2", "e1", 2), 2, event.Alert
		if _, err := s.SaveEvents(ctx, []event.Event{e3, e1, e2, alert}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			q    Query
			want []string
		}{
			{"all, in time order", Query{}, []string{e1.ID, e2.ID, alert.ID, e3.ID}},
			{"store", Query{Store: "s1"}, []string{e1.ID, e2.ID, alert.ID}},
			{"register", Query{Store: "s1", Register: "r2"}, []string{e2.ID, alert.ID}},
			{"account", Query{Account: "acct-a"}, []string{e1.ID, e3.ID}},
			{"since", Query{Since: t0.Add(time.Minute)}, []string{e2.ID, alert.ID, e3.ID}},
			{"alerts", Query{Types: []event.Type{event.Alert}}, []string{alert.ID}},
			{"limit", Query{Limit: 2}, []string{e1.ID, e2.ID}},
			{"nothing", Query{Store: "s9"}, []string{}},
		}
		for _, tt := range tests {
			got, err := s.Events(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, ids(got), tt.want)
			}
		}
	})
}

func TestFleet(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		up := wire.Status{Store: "s1", Register: "r1", Online: true, Version: "dev", OutboxDepth: 3,
			Policy: &wire.PolicyInfo{Name: "p", Version: 7}, Links: wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp}, At: t0}
		if err := s.SaveStatus(ctx, up, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveStatus(ctx, wire.Offline("s1", "r2", "dev", t0), t0); err != nil {
			t.Fatal(err)
		}
		later := up
		later.OutboxDepth, later.At = 0, t0.Add(time.Minute)
		if err := s.SaveStatus(ctx, later, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		fleet, err := s.Fleet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(fleet) != 2 {
			t.Fatalf("fleet has %d registers, want 2: %+v", len(fleet), fleet)
		}
		r1, r2 := fleet[0], fleet[1]
		if r1.Register != "r1" || !r1.Status.Online || r1.Status.OutboxDepth != 0 || r1.Status.Policy.Version != 7 || !r1.LastSeen.Equal(t0.Add(time.Minute)) {
			t.Errorf("r1 = %+v, want the later status, online, policy 7", r1)
		}
		if r2.Register != "r2" || r2.Status.Online {
			t.Errorf("r2 = %+v, want offline", r2)
		}
	})
}

func TestDenylistSequence(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		v, list, err := s.Denylist(ctx)
		if err != nil || v.Seq != 0 || len(list) != 0 {
			t.Fatalf("empty denylist: %+v, %v, err %v", v, list, err)
		}
		if err := wire.CheckEpoch(v.Epoch); err != nil {
			t.Fatalf("a new store's denylist has no valid epoch: %v", err)
		}
		epoch := v.Epoch
		if v, err = s.DenylistChange(ctx, ListChange{Add: []string{"a", "b"}, At: t0, By: "test", Reason: "test"}); err != nil || v != (wire.ListVersion{Epoch: epoch, Seq: 1}) {
			t.Fatalf("first change: %+v, err %v", v, err)
		}
		if v, err = s.DenylistChange(ctx, ListChange{Add: []string{"c"}, Remove: []string{"a"}, At: t0, By: "test", Reason: "test"}); err != nil || v.Seq != 2 {
			t.Fatalf("second change: %+v, err %v", v, err)
		}
		v, list, err = s.Denylist(ctx)
		slices.Sort(list)
		if err != nil || v != (wire.ListVersion{Epoch: epoch, Seq: 2}) || !slices.Equal(list, []string{"b", "c"}) {
			t.Fatalf("denylist = %+v %v (err %v), want %s/2 [b c]", v, list, err, epoch)
		}
		// Each change is recorded, in the same transaction, as an event.
		recs, err := s.Events(ctx, Query{Types: []event.Type{event.DenylistChanged}})
		if err != nil || len(recs) != 2 || recs[1].Denylist == nil || recs[1].Denylist.Seq != 2 || recs[1].Denylist.By != "test" {
			t.Fatalf("recorded changes = %+v (err %v), want 2 with by", recs, err)
		}
		// Concurrent changes never share a sequence number.
		var wg sync.WaitGroup
		seqs := make([]uint64, 10)
		for i := range seqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := s.DenylistChange(ctx, ListChange{Add: []string{fmt.Sprint("x", i)}, At: t0, By: "test", Reason: "test"})
				if err != nil {
					t.Error(err)
				}
				seqs[i] = v.Seq
			}()
		}
		wg.Wait()
		slices.Sort(seqs)
		for i, n := range seqs {
			if n != uint64(i+3) {
				t.Fatalf("concurrent sequence numbers %v, want 3..12", seqs)
			}
		}
	})
}

func TestPostgresMigrationIsIdempotent(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		s, err := OpenPostgres(ctx, url)
		if err != nil {
			t.Fatalf("open %d: %v", i+1, err)
		}
		if _, err := s.SaveEvents(ctx, []event.Event{decision("s1", "r1", uint64(i+1), t0, "a", policy.Allow)}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestBoltInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("second open of the same HQ file succeeded")
	}
}

// TestEventsPaging pages through events that share a timestamp with the
// (Since, After) cursor: every event once, in order.
func TestEventsPaging(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var evs []event.Event
		for i := 1; i <= 7; i++ {
			at := t0
			if i > 5 {
				at = t0.Add(time.Second)
			}
			evs = append(evs, decision("s1", "r1", uint64(i), at, "a", policy.Allow))
		}
		if _, err := s.SaveEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		var got []string
		q := Query{Limit: 2}
		for page := 0; page < 10; page++ {
			part, err := s.Events(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(part)...)
			if len(part) < q.Limit {
				break
			}
			q.Since, q.After = part[len(part)-1].At, part[len(part)-1].ID
		}
		want := ids(evs)
		slices.Sort(want[:5]) // same timestamp: id order
		if !slices.Equal(got, want) {
			t.Fatalf("paged %v, want %v", got, want)
		}
	})
}

// The denylist's epoch is made with the store and kept in it: a reopened
// store (or a restored backup) has the same one, a new store another.
func TestDenylistEpochKept(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, open func(which string) (Store, error)) {
		epochOf := func(which string) string {
			t.Helper()
			s, err := open(which)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.DenylistChange(ctx, ListChange{Add: []string{"a"}, At: t0, By: "test", Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			v, _, err := s.Denylist(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v.Epoch
		}
		e1 := epochOf("first")
		if e := epochOf("first"); e != e1 {
			t.Errorf("reopened store: epoch %q, was %q", e, e1)
		}
		if e := epochOf("second"); e == e1 {
			t.Errorf("a new store has the same epoch %q", e)
		}
	}
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		check(t, func(which string) (Store, error) { return OpenBolt(filepath.Join(dir, which+".db")) })
	})
	t.Run("postgres", func(t *testing.T) {
		urls := map[string]string{"first": testenv.PostgresURL(t), "second": testenv.PostgresURL(t)}
		check(t, func(which string) (Store, error) { return OpenPostgres(ctx, urls[which]) })
	})
}

// A database made before epochs (schema 1, with a list at seq 3) gets an
// epoch on upgrade and keeps its list and sequence.
func TestPostgresUpgradeGivesEpoch(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], `CREATE TABLE posguard_schema (version int NOT NULL)`, `INSERT INTO posguard_schema VALUES (1)`,
		`UPDATE denylist_seq SET seq = 3`, `INSERT INTO denylist VALUES ('acct-old', now())`} {
		if _, err := pool.Exec(ctx, q); err != nil {
			pool.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	pool.Close()
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, list, err := s.Denylist(ctx)
	if err != nil || v.Seq != 3 || !slices.Equal(list, []string{"acct-old"}) || wire.CheckEpoch(v.Epoch) != nil {
		t.Fatalf("upgraded denylist: %+v %v, err %v", v, list, err)
	}
}

func resolution(store, reg string, seq uint64, saleID, action, by string, at time.Time) event.Event {
	return event.Event{
		ID: event.ID(store, reg, "e1", seq), Seq: seq, Type: event.Resolution,
		Store: store, Register: reg, At: at, SaleID: saleID,
		Resolution: &event.ResolutionInfo{ReviewID: saleID, Action: action, By: by, At: at},
	}
}

func alertEv(store, reg string, seq uint64, out policy.Outcome) event.Event {
	ev := decision(store, reg, seq, t0.Add(time.Duration(seq)*time.Minute), "acct", out)
	ev.Type = event.Alert
	return ev
}

// TestAlertStates: each alert's state comes from the resolution event of
// its own sale (same store and register), however the events arrive.
func TestAlertStates(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		at := t0.Add(time.Hour)
		evs := []event.Event{
			// Resolutions may reach HQ before their alert (separate topics).
			resolution("s1", "r1", 20, "sale-2", event.Approve, "display s1", at),
			alertEv("s1", "r1", 1, policy.Review), // open
			alertEv("s1", "r1", 2, policy.Review), // approved
			alertEv("s1", "r1", 3, policy.Review), // rejected
			resolution("s1", "r1", 21, "sale-3", event.Reject, "manager-2", at.Add(time.Minute)),
			alertEv("s1", "r1", 4, policy.Review), // timed out
			resolution("s1", "r1", 22, "sale-4", event.Timeout, "", at.Add(2*time.Minute)),
			alertEv("s1", "r1", 5, policy.Deny), // denied
			// The same sale id at another register resolves nothing here.
			resolution("s1", "r2", 23, "sale-1", event.Approve, "display s1", at),
			decision("s1", "r1", 6, t0, "acct", policy.Allow), // not an alert
		}
		if _, err := s.SaveEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		// A later, second resolution of sale-3 does not undo the first.
		if _, err := s.SaveEvents(ctx, []event.Event{resolution("s1", "r1", 24, "sale-3", event.Approve, "late", at.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Alerts(ctx, Query{Store: "s1", Types: []event.Type{event.Decision}})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			id, state, by string
			at            time.Time
		}{
			{evs[1].ID, AlertOpen, "", time.Time{}},
			{evs[2].ID, AlertApproved, "display s1", at},
			{evs[3].ID, AlertRejected, "manager-2", at.Add(time.Minute)},
			{evs[5].ID, AlertTimedOut, "", at.Add(2 * time.Minute)},
			{evs[7].ID, AlertDenied, "", time.Time{}},
		}
		if len(got) != len(want) {
			t.Fatalf("%d alerts, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			a := got[i]
			var by string
			var rat time.Time
			if a.Resolution != nil {
				by, rat = a.Resolution.By, a.Resolution.At
			}
			if a.ID != w.id || a.State != w.state || by != w.by || !rat.Equal(w.at) || (w.at.IsZero() != (a.Resolution == nil)) {
				t.Errorf("alert %d: %s %s by %q at %v, want %s %s by %q at %v", i, a.ID, a.State, by, rat, w.id, w.state, w.by, w.at)
			}
		}
		// Filters apply as to Events.
		if got, err := s.Alerts(ctx, Query{Store: "s1", Register: "r1", Since: t0.Add(4 * time.Minute), Limit: 1}); err != nil || len(got) != 1 || got[0].ID != evs[5].ID {
			t.Errorf("filtered alerts %+v, %v", got, err)
		}
	})
}

// TestBoltAlertIndexBackfill: a state file from before the resolution
// index gets it built when opened.
func TestBoltAlertIndexBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.SaveEvents(ctx, []event.Event{alertEv("s1", "r1", 1, policy.Review),
		resolution("s1", "r1", 2, "sale-1", event.Reject, "manager-1", t0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bResolutions) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Alerts(ctx, Query{})
	if err != nil || len(got) != 1 || got[0].State != AlertRejected || got[0].Resolution.By != "manager-1" {
		t.Fatalf("alerts %+v, %v", got, err)
	}
}

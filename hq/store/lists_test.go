package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/wire"
)

func accounts(es []ListEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Account
	}
	return out
}

// Each denylist entry says who added it, when and why — the change that
// last added it — with its detail; search is by prefix, paging by account.
func TestDenylistEntries(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		change := func(c ListChange) wire.ListVersion {
			t.Helper()
			v, err := s.DenylistChange(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		change(ListChange{Add: []string{"acct-a", "acct-b", "crew-1"}, At: t0, By: "ana (console)", Reason: "CCTV at s1"})
		exp := t0.Add(24 * time.Hour)
		change(ListChange{Add: []string{"crew-2"}, At: t0.Add(time.Minute), By: "hq", Reason: "account_stores",
			Details: map[string]wire.ListDetail{"crew-2": {ExpiresAt: exp, Rule: "account_stores", Reason: "3 stores in 30m", Events: []string{"s1/r1/e1/1"}}}})
		// Added again: the entry is now the later change's.
		v := change(ListChange{Add: []string{"acct-b"}, At: t0.Add(2 * time.Minute), By: "bob (token)", Reason: "seen again"})
		change(ListChange{Remove: []string{"acct-a"}, At: t0.Add(3 * time.Minute), By: "ana (console)", Reason: "paid back"})

		all, err := s.DenylistEntries(ctx, ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if got := accounts(all); !slices.Equal(got, []string{"acct-b", "crew-1", "crew-2"}) {
			t.Fatalf("entries %v", got)
		}
		b, c1, c2 := all[0], all[1], all[2]
		if b.By != "bob (token)" || b.Reason != "seen again" || b.Seq != v.Seq || !b.Added.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("re-added entry %+v, want the change at seq %d", b, v.Seq)
		}
		if c1.By != "ana (console)" || c1.Reason != "CCTV at s1" || c1.Seq != 1 || !c1.Added.Equal(t0) || !c1.Detail.ExpiresAt.IsZero() {
			t.Fatalf("manual entry %+v", c1)
		}
		if c2.By != "hq" || c2.Detail.Rule != "account_stores" || !c2.Detail.ExpiresAt.Equal(exp) || c2.Detail.Events[0] != "s1/r1/e1/1" {
			t.Fatalf("automatic entry %+v", c2)
		}
		for _, tc := range []struct {
			q    ListQuery
			want []string
		}{
			{ListQuery{Prefix: "crew-"}, []string{"crew-1", "crew-2"}},
			{ListQuery{Prefix: "crew-", After: "crew-1"}, []string{"crew-2"}},
			{ListQuery{Limit: 1}, []string{"acct-b"}},
			{ListQuery{After: "acct-b", Limit: 1}, []string{"crew-1"}},
			{ListQuery{Prefix: "acct-a"}, []string{}},
			{ListQuery{Prefix: "c%"}, []string{}}, // LIKE's wildcards are letters here
			{ListQuery{Prefix: "zz"}, []string{}},
		} {
			got, err := s.DenylistEntries(ctx, tc.q)
			if err != nil || !slices.Equal(accounts(got), tc.want) {
				t.Errorf("%+v: %v %v, want %v", tc.q, accounts(got), err, tc.want)
			}
		}
	})
}

func TestAllowlistEntries(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		exp := t0.Add(48 * time.Hour)
		for i, a := range []string{"bulk-1", "bulk-2", "office-9"} {
			if _, err := s.AllowlistChange(ctx, ListChange{Add: []string{a}, At: t0.Add(time.Duration(i) * time.Minute), By: "ana (console)", Reason: "ID check at S014",
				Details: map[string]wire.ListDetail{a: {ExpiresAt: exp, Rule: "case:7"}}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.AllowlistEntries(ctx, ListQuery{Prefix: "bulk"})
		if err != nil || !slices.Equal(accounts(got), []string{"bulk-1", "bulk-2"}) {
			t.Fatalf("entries %v %v", accounts(got), err)
		}
		e := got[1]
		if e.By != "ana (console)" || e.Reason != "ID check at S014" || !e.Added.Equal(t0.Add(time.Minute)) || !e.Detail.ExpiresAt.Equal(exp) || e.Detail.Rule != "case:7" {
			t.Fatalf("entry %+v", e)
		}
		if got, err := s.AllowlistEntries(ctx, ListQuery{After: "bulk-2"}); err != nil || !slices.Equal(accounts(got), []string{"office-9"}) {
			t.Fatalf("after bulk-2: %v %v", accounts(got), err)
		}
	})
}

// The audit trail is the records of the list changes, newest first, a
// page at a time, optionally of one account; other events never show.
func TestListChanges(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		// Two changes at the same instant: the cursor must not lose one.
		for i, c := range []ListChange{
			{Add: []string{"acct-a"}, At: t0, By: "ana (console)", Reason: "one"},
			{Add: []string{"acct-b"}, At: t0, By: "ana (console)", Reason: "two"},
			{Remove: []string{"acct-a"}, At: t0.Add(time.Minute), By: "bob (console)", Reason: "three"},
		} {
			if _, err := s.DenylistChange(ctx, c); err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
		if _, err := s.SaveEvents(ctx, []event.Event{decision("s1", "r1", 1, t0, "acct-a", "deny")}); err != nil {
			t.Fatal(err)
		}
		reasons := func(evs []event.Event) []string {
			var out []string
			for _, ev := range evs {
				out = append(out, ev.Denylist.Reason)
			}
			return out
		}
		all, err := s.ListChanges(ctx, AuditQuery{})
		if err != nil || !slices.Equal(reasons(all), []string{"three", "two", "one"}) {
			t.Fatalf("all: %v %v", reasons(all), err)
		}
		var pages []string
		var cur Cursor
		for range 4 {
			page, err := s.ListChanges(ctx, AuditQuery{Before: cur, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			pages = append(pages, reasons(page)...)
			cur = CursorOf(page[0])
		}
		if !slices.Equal(pages, []string{"three", "two", "one"}) {
			t.Fatalf("paged: %v", pages)
		}
		if got, err := s.ListChanges(ctx, AuditQuery{Account: "acct-a"}); err != nil || !slices.Equal(reasons(got), []string{"three", "one"}) {
			t.Fatalf("acct-a: %v %v", reasons(got), err)
		}
		if _, err := s.AllowlistChange(ctx, ListChange{Add: []string{"acct-a"}, At: t0.Add(2 * time.Minute), By: "ana", Reason: "four",
			Details: map[string]wire.ListDetail{"acct-a": {ExpiresAt: t0.Add(time.Hour)}}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListChanges(ctx, AuditQuery{Type: AllowlistChanged})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			// Allowlist changes are recorded as events by the branch that
			// adds event.AllowlistChanged; before it there is nothing to read.
			t.Log("this build records no allowlist changes as events")
			return
		}
		if len(got) != 1 || ChangeInfo(got[0]) == nil || ChangeInfo(got[0]).Reason != "four" || ChangeInfo(got[0]).By != "ana" {
			t.Fatalf("allowlist changes: %+v", got)
		}
		if got, err := s.ListChanges(ctx, AuditQuery{Account: "acct-a"}); err != nil || len(got) != 3 || ChangeInfo(got[0]).Reason != "four" {
			t.Fatalf("acct-a in both lists: %+v %v", got, err)
		}
		if got, err := s.ListChanges(ctx, AuditQuery{Type: event.DenylistChanged, Account: "acct-a"}); err != nil || len(got) != 2 {
			t.Fatalf("acct-a in the denylist: %+v %v", got, err)
		}
	})
}

func TestCaseAlertsPaged(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		var id string
		var want []string
		for i := range 5 {
			a := caseAlert("s1", "acct-a", uint64(5-i)) // stored newest first
			var err error
			id, _, err = s.OpenOrExtendCase(ctx, NewCase{Account: "acct-a", Store: "s1", Alert: a, Opened: opened("hq", t0)})
			if err != nil {
				t.Fatal(err)
			}
			want = append([]string{a.ID}, want...)
		}
		var got []string
		var cur Cursor
		for range 4 {
			page, err := s.CaseAlerts(ctx, id, CaseAlertQuery{After: cur, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, ids(page)...)
			cur = CursorOf(page[len(page)-1])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged alerts %v, want %v", got, want)
		}
		if _, err := s.CaseAlerts(ctx, "999", CaseAlertQuery{}); !errors.Is(err, ErrCaseNotFound) {
			t.Fatalf("missing case: %v", err)
		}
		if _, err := s.SaveEvents(ctx, []event.Event{*caseAlert("s1", "acct-a", 2), *caseAlert("s1", "acct-a", 4)}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.EventsByID(ctx, []string{want[1], "s9/r9/e9/9", want[3]})
		if err != nil || len(evs) != 2 {
			t.Fatalf("by id: %v %v", ids(evs), err)
		}
	})
}

// A bbolt file from before entries named their records gets the names
// from the records when opened.
func TestBoltDenylistRecordsBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []ListChange{
		{Add: []string{"acct-a"}, At: t0, By: "ana", Reason: "first"},
		{Add: []string{"acct-a", "acct-b"}, At: t0.Add(time.Minute), By: "bob", Reason: "second"},
	} {
		if _, err := s.DenylistChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Make it an old file: entries without a record, no marker.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, a := range []string{"acct-a", "acct-b"} {
			if err := tx.Bucket(bDenylist).Put([]byte(a), nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Delete(kDenyRecords)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DenylistEntries(ctx, ListQuery{}); got[0].By != "" {
		t.Fatalf("old file still names records: %+v", got)
	}
	s.Close()
	if s, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DenylistEntries(ctx, ListQuery{})
	if err != nil || len(got) != 2 || got[0].By != "bob" || got[0].Reason != "second" || got[1].Seq != 2 {
		t.Fatalf("backfilled %+v %v", got, err)
	}
}

// A database from before the lists migration gets each entry's record.
func TestPostgresDenylistRecordsBackfill(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	i := slices.Index(migrations, listsMigration)
	stmts := append(slices.Clone(migrations[:i]), `CREATE TABLE posguard_schema (version int NOT NULL)`)
	for _, q := range stmts {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO posguard_schema VALUES ($1)`, i); err != nil {
		t.Fatal(err)
	}
	// The old code's change: the entry without a record id.
	old := ListChange{Add: []string{"acct-old"}, At: t0, By: "ana (token)", Reason: "stolen card"}
	b, err := event.Marshal(old.record(wire.ListVersion{Epoch: "e", Seq: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO events (id, seq, type, store, register, at, body)
		VALUES ('hq/denylist/e/1', 1, 'denylist', 'hq', 'denylist', $1, $2)`, t0, b); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO denylist VALUES ('acct-old', now())`); err != nil {
		t.Fatal(err)
	}
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.DenylistEntries(ctx, ListQuery{})
	if err != nil || len(got) != 1 || got[0].By != "ana (token)" || got[0].Reason != "stolen card" || !got[0].Added.Equal(t0) {
		t.Fatalf("backfilled %+v %v", got, err)
	}
}

// A cursor from a URL: anything is refused with a reason or round-trips.
func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{At: t0, ID: "hq/denylist/e/1"}.String())
	f.Add("")
	f.Add("!!")
	f.Add("MjAxOS0wNy0wM1QxMDowMDowMFo") // a time without an id
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cursor: ") {
				t.Fatalf("rejection %q does not say what was wrong", err)
			}
			return
		}
		if s == "" {
			if !c.IsZero() {
				t.Fatalf("empty cursor parsed as %+v", c)
			}
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil || !again.At.Equal(c.At) || again.ID != c.ID {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, c, c.String(), again, err)
		}
	})
}

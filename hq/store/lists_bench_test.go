package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/wire"
)

// BenchmarkConsoleListsPostgres measures the Lists and Cases pages' reads
// on PostgreSQL among POSGUARD_BENCH_EVENTS other events (default
// 1,000,000, generated in SQL), 2,000 denylist changes, 1,000 allow
// entries and a case of 500 alerts: every read is one page found by an
// index, so its time must not grow with the events.
//
//	go test ./hq/store -run '^$' -bench ConsoleLists -benchtime 200x
func BenchmarkConsoleListsPostgres(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("POSGUARD_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("POSGUARD_BENCH_EVENTS: %v", err)
		}
	}
	ctx := context.Background()
	url := testenv.PostgresURL(b)
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	start := time.Now()
	if _, err := pool.Exec(ctx, `INSERT INTO events (id, seq, type, store, register, at, account, body)
		SELECT 'S' || (i % 1000) || '/R1/e/' || i, i, CASE WHEN i % 10 = 0 THEN 'alert' ELSE 'decision' END,
			'S' || (i % 1000), 'R1', timestamptz '2026-01-01' + i * interval '1 second', 'acct-' || (i % 100000), '{}'
		FROM generate_series(1, $1::int) i`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		c := ListChange{Add: []string{fmt.Sprintf("crew-%05d", i)}, At: at.Add(time.Duration(i) * time.Minute), By: "hq", Reason: "account_stores"}
		if i%4 == 3 {
			c = ListChange{Remove: []string{fmt.Sprintf("crew-%05d", i-1)}, At: c.At, By: "ana (console)", Reason: "paid back"}
		}
		if _, err := s.DenylistChange(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		a := fmt.Sprintf("bulk-%05d", i)
		if _, err := s.AllowlistChange(ctx, ListChange{Add: []string{a}, At: at, By: "ana (console)", Reason: "ID check",
			Details: map[string]wire.ListDetail{a: {ExpiresAt: at.Add(720 * time.Hour)}}}); err != nil {
			b.Fatal(err)
		}
	}
	var id string
	for i := range 500 {
		a := caseAlert(fmt.Sprintf("S%03d", i%50), "crew-00001", uint64(i+1))
		if id, _, err = s.OpenOrExtendCase(ctx, NewCase{Account: "crew-00001", Alert: a, Opened: opened("hq", at)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d events, 2,000 denylist changes, 1,000 allow entries, a case of 500 alerts in %s", n, time.Since(start).Round(time.Second))
	first, err := s.ListChanges(ctx, AuditQuery{Limit: 50})
	if err != nil || len(first) != 50 {
		b.Fatalf("audit: %d %v", len(first), err)
	}
	for _, bc := range []struct {
		name string
		read func() (int, error)
	}{
		{"denylist-page", func() (int, error) {
			es, err := s.DenylistEntries(ctx, ListQuery{After: "crew-00500", Limit: 50})
			return len(es), err
		}},
		{"denylist-search", func() (int, error) {
			es, err := s.DenylistEntries(ctx, ListQuery{Prefix: "crew-012", Limit: 50})
			return len(es), err
		}},
		{"allowlist-page", func() (int, error) {
			es, err := s.AllowlistEntries(ctx, ListQuery{After: "bulk-00500", Limit: 50})
			return len(es), err
		}},
		{"audit-first", func() (int, error) { evs, err := s.ListChanges(ctx, AuditQuery{Limit: 50}); return len(evs), err }},
		{"audit-next", func() (int, error) {
			evs, err := s.ListChanges(ctx, AuditQuery{Before: CursorOf(first[49]), Limit: 50})
			return len(evs), err
		}},
		{"audit-account", func() (int, error) {
			evs, err := s.ListChanges(ctx, AuditQuery{Account: "crew-00002", Limit: 50})
			return len(evs), err
		}},
		{"case-alerts", func() (int, error) {
			evs, err := s.CaseAlerts(ctx, id, CaseAlertQuery{Limit: 50})
			return len(evs), err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := bc.read(); err != nil || got == 0 {
					b.Fatalf("%d rows, %v", got, err)
				}
			}
		})
	}
}

package store

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/sale"
)

// fired makes a decision that fired rules ("id" enforced, "id~" shadow)
// over a cart worth yen.
func fired(store string, seq uint64, at time.Time, out policy.Outcome, yen int64, rules ...string) event.Event {
	ev := decision(store, "r1", seq, at, "acct", out)
	ev.Request.Lines = []sale.Line{{JAN: "4900000000001", Category: "tobacco", Quantity: 2, UnitPrice: yen / 2}}
	for _, r := range rules {
		mode := "enforce"
		if id, ok := strings.CutSuffix(r, "~"); ok {
			r, mode = id, "shadow"
		}
		ev.Decision.Rules = append(ev.Decision.Rules, sale.Fired{ID: r, Action: "deny", Mode: mode, Reason: r})
	}
	return ev
}

// statsEvents are two hours of two stores' decisions, an alert and a
// chain alert.
func statsEvents() []event.Event {
	h0, h1 := t0, t0.Add(time.Hour)
	chain := event.Event{ID: event.ID(event.HQStore, event.HQChain, "multi.abc", 1), Seq: 1, Type: event.Alert,
		Store: event.HQStore, Register: event.HQChain, At: h1.Add(5 * time.Minute),
		Chain: &event.ChainInfo{Rule: "multi", Kind: "distinct_stores", Mode: "enforce", Reason: "3 stores", Account: "acct", Stores: []string{"s1", "s2"}}}
	return []event.Event{
		fired("s1", 1, h0.Add(time.Minute), policy.Allow, 1000),
		fired("s1", 2, h0.Add(2*time.Minute), policy.Review, 3000, "velocity", "cartons~"),
		fired("s1", 3, h0.Add(3*time.Minute), policy.Deny, 12000, "cartons", "velocity"),
		fired("s2", 1, h0.Add(4*time.Minute), policy.Deny, 8000, "cartons"),
		fired("s1", 4, h1.Add(time.Minute), policy.Deny, 5000, "cartons"),
		alertEv("s1", "r1", 90, policy.Deny), // an alert counts nothing: its decision does
		chain,
	}
}

func TestStatsRollup(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		evs := statsEvents()
		if _, err := s.SaveEvents(ctx, evs[:4]); err != nil {
			t.Fatal(err)
		}
		// Redelivered events in a batch with new ones: only the new count.
		if n, err := s.SaveEvents(ctx, append(slices.Clone(evs[2:]), evs[0])); err != nil || n != 3 {
			t.Fatalf("redelivery: inserted %d, %v; want 3", n, err)
		}
		checkStats(t, s)
	})
}

func checkStats(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	h0, h1 := t0, t0.Add(time.Hour)
	hours, err := s.HourlyStats(ctx, StatsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := []HourStats{
		{Hour: h0, Store: "s1", Decisions: 3, Reviews: 1, Denies: 1, YenRefused: 12000},
		{Hour: h0, Store: "s2", Decisions: 1, Denies: 1, YenRefused: 8000},
		{Hour: h1, Store: "s1", Decisions: 1, Denies: 1, YenRefused: 5000},
	}
	if !slices.Equal(hours, want) {
		t.Errorf("hourly stats\n got %+v\nwant %+v", hours, want)
	}
	for _, tt := range []struct {
		name string
		q    StatsQuery
		want []HourStats
	}{
		{"store", StatsQuery{Store: "s2"}, want[1:2]},
		{"since inside an hour counts that hour", StatsQuery{Since: h1.Add(30 * time.Minute)}, want[2:]},
		{"until", StatsQuery{Until: h1}, want[:2]},
		{"empty range", StatsQuery{Since: h1.Add(time.Hour)}, nil},
		{"top store, the others summed", StatsQuery{Top: 1}, []HourStats{
			{Hour: h0, Store: OtherStores, Decisions: 1, Denies: 1, YenRefused: 8000}, want[0], want[2]}},
		{"top stores beyond the fleet", StatsQuery{Top: 5}, want},
	} {
		got, err := s.HourlyStats(ctx, tt.q)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	rules, err := s.RuleStats(ctx, StatsQuery{})
	wantRules := []RuleStats{{Rule: "cartons", Fired: 3, Shadow: 1}, {Rule: "velocity", Fired: 2}, {Rule: "multi", Fired: 1}}
	if err != nil || !slices.Equal(rules, wantRules) {
		t.Errorf("rule stats %+v, %v; want %+v", rules, err, wantRules)
	}
	rules, err = s.RuleStats(ctx, StatsQuery{Since: h1, Limit: 1})
	if want := []RuleStats{{Rule: "cartons", Fired: 1}}; err != nil || !slices.Equal(rules, want) {
		t.Errorf("rule stats of the second hour, top 1: %+v, %v; want %+v", rules, err, want)
	}
	if _, err := s.HourlyStats(ctx, StatsQuery{Since: h1, Until: h0}); err == nil {
		t.Error("a range ending before it starts: no error")
	}
}

// TestStatsBackfill: a store that held events before the rollup existed
// counts them when opened (bbolt) or migrated (PostgreSQL) — the same
// numbers as counting at ingest.
func TestStatsBackfill(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hq.db")
		s, err := OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SaveEvents(context.Background(), statsEvents()); err != nil {
			t.Fatal(err)
		}
		err = s.db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bStatsHourly, bStatsRules, bAlertFeed} {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err = OpenBolt(path); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		checkStats(t, s)
		if got, err := s.AlertFeed(context.Background(), Query{}, "s0", 10); err != nil || len(got) != 2 {
			t.Errorf("feed rebuilt: %d alerts, %v; want 2", len(got), err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		s, err := OpenPostgres(ctx, testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.SaveEvents(ctx, statsEvents()); err != nil {
			t.Fatal(err)
		}
		// The counts made at ingest, forgotten, then made again from the
		// events as the migration does.
		if _, err = s.pool.Exec(ctx, `DELETE FROM stats_hourly; DELETE FROM stats_rules;`+statsBackfill); err != nil {
			t.Fatal(err)
		}
		checkStats(t, s)
	})
}

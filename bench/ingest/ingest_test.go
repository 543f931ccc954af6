// Package ingest measures HQ's event storage: how many register events per
// second HQ can make durable, in PostgreSQL (the production store) and in
// the bbolt file the demo uses; and (mqtt_test.go) the whole path, from a
// register's MQTT publish to HQ's ack.
package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
)

// batch is how many events HQ stores per SaveEvents call: about what one
// MQTT read loop collects under load before acknowledging.
const batch = 100

func events(n, from int) []event.Event {
	at := time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)
	d := &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "chain-default", Version: 1}}
	out := make([]event.Event, n)
	for i := range out {
		seq := uint64(from + i + 1)
		store, reg := fmt.Sprintf("S%03d", seq%200), fmt.Sprintf("R%d", seq%3+1)
		when := at.Add(time.Duration(seq) * time.Millisecond)
		req := &policy.Request{SaleID: fmt.Sprint("sale-", seq), Store: store, Register: reg, At: when,
			Lines:   []policy.Line{{JAN: "4901234200012", Category: "food", Quantity: 2, UnitPrice: 200}, {JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 600}},
			Payment: policy.Payment{Kind: "pg1", Issuer: "posguard-wallet-test", Account: fmt.Sprint("acct-", seq%5000), TokenID: fmt.Sprintf("%016x", seq)}}
		out[i] = event.Event{ID: event.ID(store, reg, "bench", seq), Seq: seq, Type: event.Decision, Store: store, Register: reg,
			At: when, SaleID: req.SaleID, Request: req, Decision: d}
	}
	return out
}

func benchIngest(b *testing.B, st store.Store) {
	ctx := context.Background()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		evs := events(batch, n)
		b.StartTimer()
		ins, err := st.SaveEvents(ctx, evs)
		if err != nil {
			b.Fatal(err)
		}
		if ins != batch {
			b.Fatalf("inserted %d of %d", ins, batch)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngest stores batches of 100 new decision events: ns/op is one
// batch, events/s the ingest rate. PostgreSQL is POSGUARD_TEST_PG (default
// the local server's "test" database); the benchmark skips without it.
func BenchmarkIngest(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		st, err := store.OpenPostgres(context.Background(), testenv.PostgresURL(b))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchIngest(b, st)
	})
	b.Run("bolt", func(b *testing.B) {
		st, err := store.OpenBolt(filepath.Join(b.TempDir(), "hq.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchIngest(b, st)
	})
}

// TestIngestOnce checks what the benchmark relies on: a batch stored twice
// is inserted once.
func TestIngestOnce(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs := events(batch, 0)
	for round, want := range []int{batch, 0} {
		ins, err := st.SaveEvents(context.Background(), evs)
		if err != nil || ins != want {
			t.Fatalf("round %d: inserted %d (%v), want %d", round, ins, err, want)
		}
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// window bounds the events published but not yet acked by HQ, as a
// register's outbox does (hqsync Window, default 500). One publisher stands
// for several registers here, so it is four of HQ's default 500-event
// batches: enough to keep HQ busy, and well under the 8,192 QoS 1 messages
// the embedded broker queues for a subscriber before dropping (a dropped
// event is resent by its register after 30 s; here it would fail the run).
const window = 2000

// mqttRig is the real ingest path: an embedded broker, an HQ service storing
// into a fresh PostgreSQL schema, and one register's publisher client.
type mqttRig struct {
	st   store.Store
	cpu  cpuMeter
	pub  paho.Client
	acks chan wire.Ack
}

// startMQTT starts the rig; with rules (a chain rules document) HQ
// evaluates them on the stream as well.
func startMQTT(tb testing.TB, n int, rules string) *mqttRig {
	tb.Helper()
	var cc hq.ChainConfig
	if rules != "" {
		doc, err := chain.Load([]byte(rules))
		if err != nil {
			tb.Fatal(err)
		}
		cc.Rules = doc
	}
	ctx := context.Background()
	dbURL, app := meteredURL(tb, testenv.PostgresURL(tb))
	st, err := store.OpenPostgres(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	br, auth := embedtest.Start(tb, "hq", "s1/r1")
	svc, err := hq.New(hq.Config{MQTT: auth.MQTT(br.URL(), "hq"), Store: st, Chain: cc})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		tb.Fatal("HQ did not connect and subscribe")
	}

	r := &mqttRig{st: st, acks: make(chan wire.Ack, n+1), cpu: cpuMeter{url: dbURL, app: app}}
	o := paho.NewClientOptions().AddBroker(br.URL()).SetClientID("s1/r1").SetUsername("s1/r1").SetPassword(auth.Password("s1/r1")).
		SetAutoReconnect(false)
	r.pub = paho.NewClient(o)
	if tok := r.pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("publisher connect: %v", tok.Error())
	}
	tb.Cleanup(func() { r.pub.Disconnect(100) })
	tok := r.pub.Subscribe(wire.AckTopic("s1", "r1"), 1, func(_ paho.Client, m paho.Message) {
		a, err := wire.ParseAck(m.Payload())
		if err != nil {
			tb.Errorf("bad ack: %v", err)
			return
		}
		r.acks <- a
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("subscribe acks: %v", tok.Error())
	}
	return r
}

// decisions are n valid decision events of register s1/r1, JSON-encoded.
func decisions(tb testing.TB, n int) (ids []string, payloads [][]byte) {
	tb.Helper()
	at := time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)
	for i := range n {
		seq := uint64(i + 1)
		sale := fmt.Sprint("sale-", seq)
		when := at.Add(time.Duration(seq) * time.Millisecond)
		ev := event.Event{ID: event.ID("s1", "r1", "bench", seq), Seq: seq, Type: event.Decision, Store: "s1", Register: "r1",
			At: when, SaleID: sale,
			Request: &policy.Request{SaleID: sale, Store: "s1", Register: "r1", At: when,
				Lines:   []policy.Line{{JAN: "4901234200012", Category: "food", Quantity: 2, UnitPrice: 200}},
				Payment: policy.Payment{Kind: "pg1", Issuer: "posguard-wallet-test", Account: fmt.Sprint("acct-", seq%5000), TokenID: fmt.Sprintf("%016x", seq)}},
			Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "chain-default", Version: 1}}}
		b, err := json.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		ids, payloads = append(ids, ev.ID), append(payloads, b)
	}
	return ids, payloads
}

// run publishes the payloads QoS 1 and waits until every id is acked. It
// returns the time from the first publish to the last ack, and checks that
// each id was acked exactly once.
func (r *mqttRig) run(tb testing.TB, ids []string, payloads [][]byte, timer func(start bool)) time.Duration {
	tb.Helper()
	topic := wire.EventsTopic("s1", "r1")
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = false
	}
	tokens := make([]paho.Token, 0, len(payloads))
	room := make(chan struct{}, window) // one per event awaiting its ack
	acked := 0
	collected := make(chan error, 1)
	timer(true)
	start := time.Now()
	go func() {
		// Generous: the machine may be shared (a stuck run still ends).
		timeout := time.After(max(60*time.Second, time.Duration(len(ids))*10*time.Millisecond))
		for acked < len(ids) {
			select {
			case a := <-r.acks:
				for _, id := range a.IDs {
					seen, ok := want[id]
					if !ok {
						collected <- fmt.Errorf("acked unknown id %s", id)
						return
					}
					if seen {
						collected <- fmt.Errorf("id %s acked twice", id)
						return
					}
					want[id] = true
					acked++
					<-room
				}
			case <-timeout:
				collected <- fmt.Errorf("timed out: %d of %d ids acked", acked, len(ids))
				return
			}
		}
		collected <- nil
	}()
	var err error
publish:
	for _, p := range payloads {
		select {
		case room <- struct{}{}:
		case err = <-collected: // failed before everything was published
			break publish
		}
		tokens = append(tokens, r.pub.Publish(topic, 1, false, p))
	}
	if err == nil {
		err = <-collected
	}
	elapsed := time.Since(start)
	timer(false)
	if err != nil {
		tb.Fatal(err)
	}
	for _, tok := range tokens {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			tb.Fatalf("publish: %v", tok.Error())
		}
	}
	return elapsed
}

// stored counts the events in the store (at most n+1, enough to see more
// than n).
func (r *mqttRig) stored(tb testing.TB, n int) int {
	tb.Helper()
	evs, err := r.st.Events(context.Background(), store.Query{Limit: n + 1})
	if err != nil {
		tb.Fatal(err)
	}
	return len(evs)
}

// BenchmarkIngestMQTT is HQ's ingest rate through the real path: one
// register's paho client publishes b.N decision events QoS 1 to the embedded
// broker, HQ stores them in PostgreSQL (default batching) and acks them;
// timed from the first publish until every id is acked. ns/op is per event,
// events/s the rate. Skips without PostgreSQL, like BenchmarkIngest.
func BenchmarkIngestMQTT(b *testing.B) { benchIngestMQTT(b, "") }

// BenchmarkIngestMQTTChain is BenchmarkIngestMQTT with every chain rule
// kind evaluated on the stream (chainRules): each event's observations
// recorded and counted in PostgreSQL before it is acked.
func BenchmarkIngestMQTTChain(b *testing.B) { benchIngestMQTT(b, chainRules) }

// chainRules has one rule of each kind, in shadow mode; the benchmark's
// sales (one store, 5,000 accounts, no top-ups, one token each) trip none,
// so what is measured is the counting every event costs.
const chainRules = `apiVersion: posguard/v1
kind: ChainRules
metadata: {name: bench}
rules:
  - {id: hop, kind: account_stores, minStores: 3, window: 30m, mode: shadow}
  - {id: walk, kind: refused_then_elsewhere, window: 2h, mode: shadow}
  - {id: fresh, kind: store_new_accounts, minAccounts: 5, freshFor: 24h, window: 1h, mode: shadow}
  - {id: tok, kind: token_reuse, window: 24h, mode: shadow}
  - {id: big, kind: expr, expr: "chain.accountStores >= 2 && event.amount >= 50000", window: 1h, mode: shadow}
`

func benchIngestMQTT(b *testing.B, rules string) {
	if b.N > 100*store.DefaultLimit-1 {
		b.Fatalf("b.N %d: the store count check reads at most %d events", b.N, 100*store.DefaultLimit-1)
	}
	r := startMQTT(b, b.N, rules)
	ids, payloads := decisions(b, b.N)
	elapsed := r.run(b, ids, payloads, func(start bool) {
		if start {
			r.cpu.start()
			b.ResetTimer()
		} else {
			b.StopTimer()
			r.cpu.report(b, b.N)
		}
	})
	if got := r.stored(b, b.N); got != b.N {
		b.Fatalf("stored %d events, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// TestIngestMQTT is the benchmark's correctness check at a small size: every
// id acked once, every event stored once.
func TestIngestMQTT(t *testing.T) {
	const n = 1500
	r := startMQTT(t, n, chainRules)
	ids, payloads := decisions(t, n)
	r.run(t, ids, payloads, func(bool) {})
	if got := r.stored(t, n); got != n {
		t.Fatalf("stored %d events, want %d", got, n)
	}
}

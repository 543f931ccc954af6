package hq

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// countingStore counts what HQ's store really inserted, and every id it was
// asked to save more than once.
type countingStore struct {
	store.Store
	mu       sync.Mutex
	inserted int
	again    int
	saves    int
	busy     time.Duration // in SaveEvents
}

func (c *countingStore) SaveEvents(ctx context.Context, evs []event.Event) (int, error) {
	t0 := time.Now()
	n, err := c.Store.SaveEvents(ctx, evs)
	c.mu.Lock()
	c.saves++
	c.busy += time.Since(t0)
	c.inserted += n
	c.again += len(evs) - n
	c.mu.Unlock()
	return n, err
}

func (c *countingStore) counts() (inserted, again int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inserted, c.again
}

// TestRestartDeliversQueuedSession restarts HQ over a backlog the broker
// queued in HQ's persistent session while it was down (no register
// resends here: the broker's copy is the only one). The broker delivers it
// the moment HQ connects, before HQ subscribes again; every event must be
// stored, once, within 10 s, every round. POSGUARD_HQ_RESTART_ROUNDS sets
// the rounds (scripts/reliability.sh runs 20); under -race each round
// queues 1,000.
func TestRestartDeliversQueuedSession(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts HQ over 10,000 queued events per round")
	}
	rounds := 3
	if v := os.Getenv("POSGUARD_HQ_RESTART_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("POSGUARD_HQ_RESTART_ROUNDS=%q: want a positive number", v)
		}
	}
	n := 10_000
	if raceDetector {
		n = 1_000 // the same path; the 10 s bound is for an uninstrumented HQ
	}
	b, auth := embedtest.Start(t, wire.HQUsername)
	bolt, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	st := &countingStore{Store: bolt}

	start := func() (svc *Service, stop func()) {
		t.Helper()
		svc, err := New(Config{MQTT: auth.MQTT(b.URL(), wire.HQUsername), Store: st,
			Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Run(ctx); close(done) }()
		return svc, func() {
			cancel()
			<-done
			brokerSeesHQGone(t, b)
		}
	}
	// The first start makes HQ's session and subscriptions at the broker.
	svc, stop := start()
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("HQ did not connect and subscribe")
	}
	stop()

	began := time.Now()
	var slowest time.Duration
	for round := 1; round <= rounds; round++ {
		// Later rounds carry later events, as a real backlog does: the
		// store's time index grows at its end.
		reg := fmt.Sprintf("r%d", round)
		for i := 1; i <= n; i++ {
			p, err := event.Marshal(decision("s1", reg, uint64((round-1)*n+i), policy.Allow))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Server().Publish(wire.EventsTopic("s1", reg), p, false, 1); err != nil {
				t.Fatal(err)
			}
		}
		restarted := time.Now()
		_, stop := start()
		want := round * n
		for {
			got, again := st.counts()
			if got == want {
				break
			}
			if got > want || time.Since(restarted) > 10*time.Second {
				// Slow or stuck? Look again a while later.
				time.Sleep(20 * time.Second)
				later, _ := st.counts()
				inflight := -1
				if cl, ok := b.Server().Clients.Get("hq"); ok {
					inflight = cl.State.Inflight.Len()
				}
				stop()
				t.Fatalf("round %d: %d of %d events stored %v after the restart (%d saved again); 20 s later %d, broker holds %d for HQ (HQ's log above)",
					round, got-(round-1)*n, n, time.Since(restarted).Round(time.Millisecond), again, later-(round-1)*n, inflight)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(restarted)
		slowest = max(slowest, took)
		t.Logf("round %d: %d events stored %v after the restart", round, n, took.Round(time.Millisecond))
		stop()
		if got, _ := st.counts(); got != want {
			t.Fatalf("round %d: %d events stored, want %d", round, got, want)
		}
		stored, err := bolt.Events(context.Background(), store.Query{Store: "s1", Register: reg, Limit: 2 * n})
		if err != nil {
			t.Fatal(err)
		}
		ids := make(map[string]bool, n)
		for _, ev := range stored {
			ids[ev.ID] = true
		}
		if len(stored) != n || len(ids) != n {
			t.Fatalf("round %d: store lists %d events (%d ids) of %s, want %d", round, len(stored), len(ids), reg, n)
		}
	}
	_, again := st.counts()
	t.Logf("%d restarts over %d queued events each: slowest %v, all %v; %d events delivered again and skipped; %d saves took %v",
		rounds, n, slowest.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), again, st.saves, st.busy.Round(time.Millisecond))
}

// brokerSeesHQGone waits until the broker has closed HQ's connection: only
// then does it queue for HQ's session. Before, it pushes to the connection,
// and mochi drops what does not fit in a connected client's write buffer.
func brokerSeesHQGone(t *testing.T, b *broker.Broker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl, ok := b.Server().Clients.Get("hq")
		if !ok || cl.Closed() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the broker still has HQ connected 10 s after it stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Package reliability breaks the parts of posguard under load and checks
// that nothing is lost: the MQTT broker killed and restarted while a
// register commits decisions, HQ and its database connection restarted,
// the scanner's serial port unplugged and replugged while scans flow. Each
// test prints what it tried and what was lost (it must be nothing).
//
// The tests run only with POSGUARD_RELIABILITY=1 (scripts/reliability.sh
// sets it): they take seconds each and load the machine.
package reliability

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

func need(t *testing.T) {
	if os.Getenv("POSGUARD_RELIABILITY") != "1" {
		t.Skip("reliability suite: set POSGUARD_RELIABILITY=1 (scripts/reliability.sh)")
	}
}

// now is inside the example policy's validity.
var now = time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fleet is one register (bbolt state + hqsync) and HQ, linked by an
// embedded broker that the tests kill and restart.
type fleet struct {
	t       *testing.T
	addr    string
	mu      sync.Mutex
	b       *broker.Broker
	auth    *embedtest.Auth
	hqStore store.Store
	openHQ  func() store.Store
	hqStop  func()
	key     ed25519.PrivateKey
	st      *state.Store
	sync    *hqsync.Client
}

func newFleet(t *testing.T, openHQ func() store.Store) *fleet {
	f := &fleet{t: t, openHQ: openHQ, auth: embedtest.New(t, wire.HQUsername, "S001/R1")}
	_, f.key, _ = ed25519.GenerateKey(nil)
	f.startBroker("127.0.0.1:0")
	t.Cleanup(func() { f.mu.Lock(); f.b.Close(); f.mu.Unlock() })
	f.startHQ()
	t.Cleanup(func() { f.stopHQ() })

	var err error
	f.st, err = state.Open(filepath.Join(t.TempDir(), "agent.db"), state.Options{Store: "S001", Register: "R1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.sync, err = hqsync.New(hqsync.Config{
		MQTT:  f.mqtt("S001/R1"),
		Store: "S001", Register: "R1", State: f.st, Now: time.Now, ResendAfter: time.Second, // a real clock: resends are timed by it
		ActivePolicy: func() int64 { return 1 },
		OnPolicy:     func(*policy.Policy) {},
		Status:       func() wire.Status { return wire.Status{} },
		Trusted:      []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: f.key.Public()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.sync.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 20*time.Second, "register connected", f.sync.Connected)
	return f
}

func (f *fleet) startBroker(addr string) {
	b, err := broker.Start(broker.Options{Addr: addr, Passwords: f.auth.Passwords()})
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.b, f.addr = b, b.Addr()
	f.mu.Unlock()
}

// mqtt is identity's client configuration for the fleet's broker.
func (f *fleet) mqtt(identity string) mqttconn.Config {
	c := f.auth.MQTT("tcp://"+f.addr, identity)
	c.MaxReconnect = 300 * time.Millisecond
	return c
}

func (f *fleet) startHQ() {
	f.hqStore = f.openHQ()
	svc, err := hq.New(hq.Config{MQTT: f.mqtt(wire.HQUsername),
		Store: f.hqStore, Signer: f.key, SignerAlg: "EdDSA", SignerKID: "hq1", Now: func() time.Time { return now }})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	select {
	case <-svc.Ready():
	case <-time.After(20 * time.Second):
		f.t.Fatal("HQ not ready")
	}
	f.hqStop = func() { cancel(); <-done; f.hqStore.Close() }
}

func (f *fleet) stopHQ() {
	if f.hqStop != nil {
		f.hqStop()
		f.hqStop = nil
	}
}

// load commits decisions from 4 goroutines until stop is closed and
// returns how many were committed. Every 10th is a review, which adds an
// alert event, as a real register's outbox has.
func (f *fleet) load(stop <-chan struct{}) (decisions, events *atomic.Int64, wait func()) {
	decisions, events = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				out := policy.Allow
				if i%10 == 0 {
					out = policy.Review
				}
				req := &policy.Request{SaleID: fmt.Sprint("sale-", i), Store: "S001", Register: "R1", At: now.Add(time.Duration(i) * time.Millisecond),
					Lines:   []policy.Line{{JAN: "4901234200012", Category: "food", Quantity: 1, UnitPrice: 200}},
					Payment: policy.Payment{Kind: "pg1", Account: fmt.Sprint("acct-", i%100)}}
				if _, err := f.st.Commit(context.Background(), state.Record{Request: req, ReplayKey: fmt.Sprint("pg1:", i),
					Decision: &policy.Decision{Outcome: out, Policy: policy.PolicyRef{Name: "p", Version: 1}}}); err != nil {
					f.t.Errorf("commit: %v", err)
					return
				}
				f.sync.Kick()
				decisions.Add(1)
				n := int64(1)
				if out != policy.Allow {
					n = 2
				}
				events.Add(n)
				time.Sleep(time.Millisecond) // a busy chain's register, not a tight loop
			}
		}()
	}
	return decisions, events, wg.Wait
}

// settle waits for every committed event to be stored at HQ once and the
// outbox to empty, and reports what was lost.
func (f *fleet) settle(t *testing.T, tried string, events int64) {
	t.Helper()
	count := func() int64 {
		evs, err := f.hqStore.Events(context.Background(), store.Query{Limit: 100_000})
		if err != nil {
			return -1 // HQ store restarting
		}
		return int64(len(evs))
	}
	deadline := time.Now().Add(60 * time.Second)
	for (count() != events || depth(f.st) != 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := count()
	fmt.Printf("%s\n  tried: %s\n  committed events: %d, stored once at HQ: %d, left in outbox: %d\n  lost: %d\n",
		t.Name(), tried, events, got, depth(f.st), events-got)
	if got != events || depth(f.st) != 0 {
		t.Fatalf("lost %d events (HQ has %d of %d, outbox %d)", events-got, got, events, depth(f.st))
	}
}

func depth(st *state.Store) int64 { d, _ := st.OutboxStats(); return int64(d) }

func boltHQ(t *testing.T) func() store.Store {
	path := filepath.Join(t.TempDir(), "hq.db")
	return func() store.Store {
		s, err := store.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestReliabilityBrokerRestart kills the broker five times while the
// register commits decisions, restarting it on the same address after
// half a second.
func TestReliabilityBrokerRestart(t *testing.T) {
	need(t)
	f := newFleet(t, boltHQ(t))
	stop := make(chan struct{})
	decisions, events, wait := f.load(stop)
	const kills = 5
	for range kills {
		time.Sleep(800 * time.Millisecond)
		f.mu.Lock()
		f.b.Close()
		f.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		f.startBroker(f.addr)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wait()
	f.settle(t, fmt.Sprintf("%d decisions committed from 4 goroutines while the broker was killed %d times (down 0.5 s each)", decisions.Load(), kills), events.Load())
}

// TestReliabilityHQRestart stops HQ and closes its database connection
// three times under load, then starts it again. HQ stores in PostgreSQL
// when one is reachable (POSGUARD_TEST_PG), otherwise in bbolt. With
// POSGUARD_PG_RESTART_CMD set (e.g. "pg_ctl -D /path restart -m fast" for
// a private server), that command also restarts the database server while
// HQ is down.
func TestReliabilityHQRestart(t *testing.T) {
	need(t)
	open := boltHQ(t)
	backend := "bbolt"
	if os.Getenv("POSGUARD_TEST_PG") != "" || testenv.Integration() || pgReachable() {
		url := testenv.PostgresURL(t)
		backend = "PostgreSQL"
		open = func() store.Store {
			s, err := store.OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	restartCmd := os.Getenv("POSGUARD_PG_RESTART_CMD")
	f := newFleet(t, open)
	stop := make(chan struct{})
	decisions, events, wait := f.load(stop)
	const restarts = 3
	for range restarts {
		time.Sleep(time.Second)
		f.stopHQ()
		if restartCmd != "" {
			if out, err := exec.Command("sh", "-c", restartCmd).CombinedOutput(); err != nil {
				t.Fatalf("POSGUARD_PG_RESTART_CMD: %v\n%s", err, out)
			}
		}
		time.Sleep(500 * time.Millisecond)
		f.startHQ()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wait()
	what := "HQ and its " + backend + " connection"
	if restartCmd != "" {
		what += " and the database server"
	}
	f.settle(t, fmt.Sprintf("%d decisions committed while %s were restarted %d times", decisions.Load(), what, restarts), events.Load())
}

// pgReachable reports whether the default local PostgreSQL answers, so the
// HQ restart runs on the production store when there is one.
func pgReachable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

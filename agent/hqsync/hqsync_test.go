package hqsync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
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

// now is inside the example policy's validity.
var now = time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC)

type rig struct {
	t       *testing.T
	b       *broker.Broker
	auth    *embedtest.Auth
	addr    string
	hqStore store.Store
	hq      *hq.Service
	key     ed25519.PrivateKey
	trusted []bundle.TrustedKey
	st      *state.Store
	sync    *Client
	active  atomic.Int64
	applied chan *policy.Policy
	cmds    chan wire.Command
	hqSkew  atomic.Int64 // added to HQ's clock, in ns
	stopHQ  func()
}

func newRig(t *testing.T) *rig { return newRigWith(t, nil) }

// newRigWith runs HQ on hqStore (a bbolt file when nil).
func newRigWith(t *testing.T, hqStore store.Store) *rig {
	t.Helper()
	r := &rig{t: t, applied: make(chan *policy.Policy, 10), cmds: make(chan wire.Command, 10)}
	pub, priv, _ := ed25519.GenerateKey(nil)
	r.key, r.trusted = priv, []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}
	r.auth = embedtest.New(t, "hq", "hq-push", "s1/r1", "s1/r2", "s2/r1")
	r.startBroker("127.0.0.1:0")
	var err error
	r.hqStore = hqStore
	if r.hqStore == nil {
		if r.hqStore, err = store.OpenBolt(filepath.Join(t.TempDir(), "hq.db")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { r.hqStore.Close() })
	r.startHQ(r.hqStore)

	r.st, err = state.Open(filepath.Join(t.TempDir(), "agent.db"), state.Options{Store: "s1", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	r.sync, err = New(Config{
		MQTT: r.mqtt("s1/r1"), Store: "s1", Register: "r1", State: r.st,
		Trusted: r.trusted, Now: func() time.Time { return now }, ResendAfter: 2 * time.Second,
		ActivePolicy: func() int64 { return r.active.Load() },
		OnPolicy:     func(p *policy.Policy) { r.active.Store(p.Metadata.Version); r.applied <- p },
		OnCommand:    func(_ context.Context, c wire.Command) error { r.cmds <- c; return nil },
		Status: func() wire.Status {
			return wire.Status{Policy: &wire.PolicyInfo{Name: "p", Version: max(1, r.active.Load())}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.run(r.sync.Run)
	waitFor(t, "agent connected", r.sync.Connected)
	return r
}

// startHQ runs HQ on hqStore as r.hq; r.stopHQ stops it.
func (r *rig) startHQ(hqStore store.Store) {
	r.t.Helper()
	var err error
	r.hqStore = hqStore
	r.hq, err = hq.New(hq.Config{MQTT: r.mqtt("hq"), Store: hqStore,
		Signer: r.key, SignerAlg: "EdDSA", SignerKID: "hq1", Now: func() time.Time { return now.Add(time.Duration(r.hqSkew.Load())) }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.stopHQ = r.run(r.hq.Run)
	<-r.hq.Ready()
}

func (r *rig) startBroker(addr string) {
	b := r.auth.Start(addr)
	r.b, r.addr = b, b.Addr()
}

// mqtt is identity's client configuration for the rig's broker.
func (r *rig) mqtt(identity string) mqttconn.Config {
	c := r.auth.MQTT("tcp://"+r.addr, identity)
	c.MaxReconnect = 500 * time.Millisecond
	return c
}

// run runs f until the test ends or the returned stop is called.
func (r *rig) run(f func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	r.t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	// Generous: the 5,000-event test shares two cores with the rest of CI.
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sale(i int, account string) *policy.Request {
	return &policy.Request{SaleID: fmt.Sprintf("sale-%d", i), Store: "s1", Register: "r1", At: now.Add(time.Duration(i) * time.Millisecond),
		Lines:   []policy.Line{{JAN: "4901234567894", Category: "food", Quantity: 1, UnitPrice: 300}},
		Payment: policy.Payment{Kind: "pg1", Account: account}}
}

func (r *rig) commit(i int, out policy.Outcome) {
	r.t.Helper()
	_, err := r.st.Commit(context.Background(), state.Record{Request: sale(i, "acct"),
		Decision:  &policy.Decision{Outcome: out, Policy: policy.PolicyRef{Name: "p", Version: 1}},
		ReplayKey: fmt.Sprintf("pg1:%08x", i)})
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) hqEvents() int {
	evs, err := r.hqStore.Events(context.Background(), store.Query{Limit: 100_000})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(evs)
}

func depth(st *state.Store) int { d, _ := st.OutboxStats(); return d }

func TestOutboxDeliveredAndAcked(t *testing.T) {
	r := newRig(t)
	r.commit(1, policy.Allow)
	r.commit(2, policy.Deny) // a decision and an alert
	r.sync.Kick()
	waitFor(t, "HQ to store 3 events", func() bool { return r.hqEvents() == 3 })
	waitFor(t, "the outbox to empty", func() bool { return depth(r.st) == 0 })
}

func loadPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.LoadFile("../../policy/testdata/chain-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// push publishes a bundle retained on the all scope as `policy push` does.
func (r *rig) push(b []byte) {
	r.t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.addr).SetClientID("hq-push").SetUsername("hq-push").SetPassword(r.auth.Password("hq-push")))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(wire.PolicyTopic("all"), 1, true, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatal(tok.Error())
	}
}

func (r *rig) sign(p *policy.Policy, key ed25519.PrivateKey) []byte {
	r.t.Helper()
	b, err := bundle.SignPolicy(key, "EdDSA", "hq1", p)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func TestPolicyPushAppliedAndRefused(t *testing.T) {
	r := newRig(t)
	p := loadPolicy(t)
	p.Metadata.Version = 5
	r.push(r.sign(p, r.key))
	select {
	case got := <-r.applied:
		if got.Metadata.Version != 5 {
			t.Fatalf("applied version %d", got.Metadata.Version)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("policy v5 not applied")
	}
	if _, v, err := r.st.ActivePolicy(); err != nil || v != 5 {
		t.Fatalf("stored policy version %d, err %v", v, err)
	}

	_, other, _ := ed25519.GenerateKey(nil)
	older, expired, elsewhere := *p, *p, *p
	older.Metadata.Version = 4
	expired.Metadata.Version, expired.Metadata.ExpiresAt = 9, now.Add(-time.Hour)
	expired.Metadata.IssuedAt = now.Add(-2 * time.Hour)
	elsewhere.Metadata.Version, elsewhere.Scope.Stores = 8, []string{"s7"}
	wrongKey := *p
	wrongKey.Metadata.Version = 6
	tampered := r.sign(&wrongKey, r.key)
	tampered[len(tampered)-1] ^= 1
	// Genuinely signed by HQ's key, but from 2030, and one with the
	// largest version (which would make every later policy "not newer");
	// SignPolicy refuses the latter, so it is signed raw.
	future := *p
	future.Metadata.Version = 10
	future.Metadata.IssuedAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	future.Metadata.ExpiresAt = future.Metadata.IssuedAt.Add(24 * time.Hour)
	huge := *p
	huge.Metadata.Version = math.MaxInt64
	canon, err := huge.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	hugeBundle, err := bundle.Sign(r.key, "EdDSA", "hq1", bundle.TypePolicy, canon)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, reason string
		bundle       []byte
	}{
		{"older", "not_newer", r.sign(&older, r.key)},
		{"expired", "expired", r.sign(&expired, r.key)},
		{"out of scope", "out_of_scope", r.sign(&elsewhere, r.key)},
		{"signed by an unknown key", "bad_signature", r.sign(&wrongKey, other)},
		{"tampered", "bad_signature", tampered},
		{"unsigned", "malformed", []byte(`{"apiVersion":"posguard/v1"}`)},
		{"issued in 2030", "issued_in_future", r.sign(&future, r.key)},
		{"version 2^63-1", "version_too_high", hugeBundle},
	} {
		r.push(tc.bundle)
		waitFor(t, tc.name+" refused", func() bool {
			rf := r.sync.Refusal()
			return rf != nil && rf.Reason == tc.reason && rf.At.Equal(now)
		})
		// A bundle whose signature fails is still reported by the version
		// it claims, so HQ's rollout counts the refusal against its push.
		if rf := r.sync.Refusal(); tc.reason == "bad_signature" && rf.Version != wrongKey.Metadata.Version {
			t.Errorf("%s: refusal names v%d, want the claimed v%d", tc.name, rf.Version, wrongKey.Metadata.Version)
		}
		r.sync.mu.Lock()
		r.sync.refusal = nil
		r.sync.mu.Unlock()
		if v := r.active.Load(); v != 5 {
			t.Fatalf("%s: active policy is now v%d, want v5 kept", tc.name, v)
		}
	}
	select {
	case got := <-r.applied:
		t.Fatalf("a refused bundle was applied: v%d", got.Metadata.Version)
	default:
	}
	// Each refusal is also an event for HQ.
	waitFor(t, "refusal events at HQ", func() bool {
		evs, _ := r.hqStore.Events(context.Background(), store.Query{Types: []event.Type{event.Refusal}})
		return len(evs) == 8
	})
}

// TestDenylistDeltaAndResync: a delta reaches the register; then a change
// whose delta the register never sees (stored at HQ, not published) leaves
// it behind, so the next delta shows a gap. The register asks for a resync
// on its cmd topic and HQ's snapshot heals it, all while connected.
func TestDenylistDeltaAndResync(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.hq.DenylistChange(ctx, store.ListChange{Add: []string{"acct-stolen"}, By: "test", Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "denylist delta applied", func() bool { return r.st.Denylisted("acct-stolen") })

	resyncs := make(chan wire.Command, 4)
	if err := r.b.Server().Subscribe(wire.CmdTopic("s1", "r1"), 9, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if c, err := wire.ParseCommand(wire.CmdTopic("s1", "r1"), pk.Payload); err == nil && c.Type == wire.CmdResync {
			resyncs <- c
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Seq 2 exists only in HQ's store: its delta was lost on the way.
	if _, err := r.hqStore.DenylistChange(ctx, store.ListChange{Add: []string{"acct-2"}, At: now, By: "test", Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	// Past HQ's coalescing window, so the resync is answered afresh.
	r.hqSkew.Add(int64(time.Minute))
	v, _, err := r.hqStore.Denylist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d3, err := bundle.SignDelta(r.key, "EdDSA", "hq1", wire.Delta{Epoch: v.Epoch, Seq: 3, Add: []string{"acct-3"}, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	r.sync.handle(ctx, fakeMsg{wire.DenylistDelta, d3}, newOutbox(r.sync))
	if r.st.Denylisted("acct-3") {
		t.Fatal("a delta after a gap was applied")
	}
	select {
	case c := <-resyncs:
		if c.HaveSeq != 1 {
			t.Fatalf("resync says it has seq %d, want 1", c.HaveSeq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resync request after a sequence gap")
	}
	waitFor(t, "HQ's snapshot to heal the gap", func() bool {
		return r.st.DenylistSeq() == 2 && r.st.Denylisted("acct-2") && r.st.Denylisted("acct-stolen")
	})
}

type fakeMsg struct {
	topic   string
	payload []byte
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 0 }
func (m fakeMsg) Payload() []byte   { return m.payload }
func (m fakeMsg) Ack()              {}

// TestBrokerDownNothingLost queues 5,000 decisions while the broker is down
// and checks that every one reaches HQ's PostgreSQL store exactly once when
// it is back.
func TestBrokerDownNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 durable commits")
	}
	pg, err := store.OpenPostgres(context.Background(), testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	r := newRigWith(t, pg)
	start := time.Now()
	r.b.Close()
	waitFor(t, "agent to notice the broker is gone", func() bool { return !r.sync.Connected() })
	const n = 5000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				r.commit(i+1, policy.Allow)
			}
		}()
	}
	wg.Wait()
	if d := depth(r.st); d != n {
		t.Fatalf("outbox depth %d while offline, want %d", d, n)
	}
	t.Logf("%d decisions committed offline in %v", n, time.Since(start))
	start = time.Now()
	r.startBroker(r.addr)
	waitFor(t, "all events at HQ", func() bool { return r.hqEvents() == n })
	waitFor(t, "outbox drained", func() bool { return depth(r.st) == 0 })
	if got := r.hqEvents(); got != n {
		t.Fatalf("HQ stored %d events, want exactly %d", got, n)
	}
	t.Logf("delivered and acked in %v", time.Since(start))
}

// TestLastWillMarksOffline cuts the register's connection without a clean
// disconnect, as a power cut would: the broker publishes the last will, and
// the retained status says offline.
func TestLastWillMarksOffline(t *testing.T) {
	r := newRig(t)
	offline := make(chan wire.Status, 4)
	tok := r.b.Server().Subscribe(wire.StatusTopic("s1", "r1"), 7, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if st, err := wire.ParseStatus(pk.Payload); err == nil && !st.Online {
			offline <- st
		}
	})
	if tok != nil {
		t.Fatal(tok)
	}
	cl, ok := r.b.Server().Clients.Get(wire.ClientID("s1", "r1"))
	if !ok {
		t.Fatal("register not connected to the broker")
	}
	cl.Stop(errors.New("test: power cut"))
	select {
	case st := <-offline:
		if st.Store != "s1" || st.Register != "r1" {
			t.Fatalf("offline status for %s/%s", st.Store, st.Register)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offline status after the connection was cut")
	}
	// And it comes back by itself.
	waitFor(t, "reconnect", r.sync.Connected)
}

// TestDenylistReachesEveryRegister: one HQ change, three registers (two
// stores), each applies the same signed delta.
func TestDenylistReachesEveryRegister(t *testing.T) {
	r := newRig(t)
	stores := []*state.Store{r.st}
	for _, id := range [][2]string{{"s1", "r2"}, {"s2", "r1"}} {
		st, err := state.Open(filepath.Join(t.TempDir(), "agent.db"), state.Options{Store: id[0], Register: id[1]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c, err := New(Config{MQTT: r.auth.MQTT("tcp://"+r.addr, id[0]+"/"+id[1]), Store: id[0], Register: id[1], State: st,
			Trusted: r.trusted, Now: func() time.Time { return now },
			ActivePolicy: func() int64 { return 0 }, OnPolicy: func(*policy.Policy) {},
			Status: func() wire.Status { return wire.Status{} }})
		if err != nil {
			t.Fatal(err)
		}
		r.run(c.Run)
		waitFor(t, id[0]+"/"+id[1]+" connected", c.Connected)
		stores = append(stores, st)
	}
	if _, err := r.hq.DenylistChange(context.Background(), store.ListChange{Add: []string{"acct-stolen-9"}, By: "test", Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range stores {
		waitFor(t, fmt.Sprintf("register %d to apply the delta", i), func() bool { return st.Denylisted("acct-stolen-9") })
	}
}

// TestDenylistAcrossHQStores: HQ's store is replaced — a fresh bbolt file,
// a move to PostgreSQL, a backup restored — and its sequence restarts or goes
// back. The register must not drop the new list's deltas as stale: it sees
// another epoch or an older sequence issued later, resyncs from the
// snapshot, and reports the reset in its status.
func TestDenylistAcrossHQStores(t *testing.T) {
	ctx := context.Background()
	fresh := func(t *testing.T) store.Store {
		s, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq-new.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		// next replaces HQ's store after the register has the list
		// {acct-2} at seq 3; path is the old bbolt file and backup a copy
		// of it taken at seq 1 {acct-1}.
		next    func(t *testing.T, path, backup string) store.Store
		why     string
		listed  []string
		dropped []string
	}{
		{"fresh bbolt file", func(t *testing.T, _, _ string) store.Store { return fresh(t) },
			wire.ResetEpoch, []string{"acct-9"}, []string{"acct-1", "acct-2"}},
		{"moved to PostgreSQL", func(t *testing.T, _, _ string) store.Store {
			s, err := store.OpenPostgres(ctx, testenv.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wire.ResetEpoch, []string{"acct-9"}, []string{"acct-1", "acct-2"}},
		{"backup restored", func(t *testing.T, path, backup string) store.Store {
			copyFile(t, backup, path)
			s, err := store.OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, wire.ResetBackwards, []string{"acct-1", "acct-9"}, []string{"acct-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hq.db")
			old, err := store.OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			r := newRigWith(t, old)
			change := func(add, remove []string) {
				t.Helper()
				r.hqSkew.Add(int64(time.Minute)) // every change is issued later than the last
				if _, err := r.hq.DenylistChange(ctx, store.ListChange{Add: add, Remove: remove, By: "test", Reason: "test"}); err != nil {
					t.Fatal(err)
				}
			}
			change([]string{"acct-1"}, nil)
			waitFor(t, "seq 1 applied", func() bool { return r.st.DenylistSeq() == 1 })
			backup := filepath.Join(t.TempDir(), "backup.db")
			copyFile(t, path, backup)
			change([]string{"acct-2"}, nil)
			change(nil, []string{"acct-1"})
			waitFor(t, "seq 3 applied", func() bool { return r.st.DenylistSeq() == 3 })
			before := r.st.DenylistVersion()

			r.stopHQ()
			old.Close()
			next := tt.next(t, path, backup)
			t.Cleanup(func() { next.Close() })
			r.startHQ(next)
			change([]string{"acct-9"}, nil)
			waitFor(t, "the register to take HQ's new list", func() bool {
				for _, a := range tt.listed {
					if !r.st.Denylisted(a) {
						return false
					}
				}
				return true
			})
			for _, a := range tt.dropped {
				if r.st.Denylisted(a) {
					t.Errorf("%s still denied: the old list survived", a)
				}
			}
			want, _, err := next.Denylist(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.st.DenylistVersion(); got != want {
				t.Errorf("register at %+v, HQ at %+v", got, want)
			}
			st := r.sync.statusNow()
			// The reset is to HQ's list as the register first met it: the
			// change's version, or the snapshot HQ publishes when it
			// connects, if that came first (an earlier version of the
			// same list).
			if st.DenylistReset == nil || st.DenylistReset.Why != tt.why || st.DenylistReset.From != before ||
				st.DenylistReset.To.Epoch != want.Epoch || st.DenylistReset.To.Seq > want.Seq {
				t.Errorf("status reports reset %+v, want %s from %+v to %+v", st.DenylistReset, tt.why, before, want)
			}
			if st.DenylistEpoch != want.Epoch || st.DenylistSeq != want.Seq {
				t.Errorf("status denylist %s/%d, want %+v", st.DenylistEpoch, st.DenylistSeq, want)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCommandWhileDownArrivesAfterRestart: a display's resolve command sent
// while the register is stopped waits in its persistent session, and the
// broker delivers it the moment the register is back, before the register
// subscribes again; the handler must already be there to take it.
func TestCommandWhileDownArrivesAfterRestart(t *testing.T) {
	r := newRig(t)
	st, err := state.Open(filepath.Join(t.TempDir(), "r2.db"), state.Options{Store: "s1", Register: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cmds := make(chan wire.Command, 1)
	cfg := r.sync.cfg
	cfg.Register, cfg.State, cfg.MQTT = "r2", st, r.mqtt("s1/r2")
	cfg.OnCommand = func(_ context.Context, c wire.Command) error { cmds <- c; return nil }
	start := func() (stop func()) {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		waitFor(t, "r2 connected", c.Connected)
		return func() { cancel(); <-done }
	}
	session := func() (subs int, connected bool) {
		cl, ok := r.b.Server().Clients.Get(wire.ClientID("s1", "r2"))
		if !ok {
			return 0, false
		}
		return len(cl.State.Subscriptions.GetAll()), !cl.Closed()
	}
	stop := start()
	// The HQ topics and the store's facts.
	waitFor(t, "r2 subscribed", func() bool { n, _ := session(); return n == len(wire.AgentFilters("s1", "r2"))+1 })
	stop()
	waitFor(t, "the broker to see r2 gone", func() bool { _, up := session(); return !up })

	cmd := wire.Command{ID: "s1/r2/display/1", Type: wire.CmdResolve, Store: "s1", Register: "r2", ReviewID: "sale-7",
		Action: wire.Approve, PIN: "4711", By: "display/s1", At: now}
	b, err := cmd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.b.Server().Publish(wire.CmdTopic("s1", "r2"), b, false, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(start())
	select {
	case got := <-cmds:
		if got.ID != cmd.ID || got.ReviewID != "sale-7" {
			t.Fatalf("command %+v, want %+v", got, cmd)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command queued while the register was down never reached it")
	}
}

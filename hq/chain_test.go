package hq

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

const hopRules = `apiVersion: posguard/v1
kind: ChainRules
metadata: {name: test}
rules:
  - id: crew-hopping
    kind: account_stores
    minStores: 3
    window: 30m
    actions: [alert, denylist, case]
    denylistFor: 1h
  - id: quiet
    kind: account_stores
    minStores: 2
    window: 30m
    mode: shadow
    actions: [alert, denylist]
    denylistFor: 1h
`

// caseRecorder is the test's CaseOpener: it records what it was asked.
type caseRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (c *caseRecorder) OpenOrExtend(_ context.Context, account, store string, alert event.Event) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, account+"@"+store+":"+alert.Chain.Rule)
	return fmt.Sprintf("case-%d", len(c.calls)), nil
}

func (c *caseRecorder) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

type chainRig struct {
	b       *broker.Broker
	auth    *embedtest.Auth
	priv    ed25519.PrivateKey
	trusted []bundle.TrustedKey
	cases   *caseRecorder
	now     atomic.Int64 // HQ's clock, unix ns
}

func newChainRig(t *testing.T, ids ...string) *chainRig {
	b, auth := embedtest.Start(t, append([]string{"display/s3", "s1/r1", "s2/r1", "s3/r1", "s4/r1"}, ids...)...)
	pub, priv, _ := ed25519.GenerateKey(nil)
	r := &chainRig{b: b, auth: auth, priv: priv, trusted: []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}, cases: &caseRecorder{}}
	r.now.Store(time.Now().UnixNano())
	return r
}

// run starts an HQ instance as id on st with the chain rules; it returns
// the service and its stop.
func (r *chainRig) run(t *testing.T, id string, st store.Store, share string) (*Service, func()) {
	t.Helper()
	return r.runWith(t, id, st, share, nil)
}

// runWith is run with the config changed by change (if not nil) first.
func (r *chainRig) runWith(t *testing.T, id string, st store.Store, share string, change func(*Config)) (*Service, func()) {
	t.Helper()
	doc, err := chain.Load([]byte(hopRules))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{MQTT: r.auth.MQTT(r.b.URL(), id), ShareGroup: share, Store: st,
		Signer: r.priv, SignerAlg: "EdDSA", SignerKID: "hq1",
		Now:   func() time.Time { return time.Unix(0, r.now.Load()) },
		Chain: ChainConfig{Rules: doc, Cases: r.cases, ExpireEvery: 50 * time.Millisecond}}
	if change != nil {
		change(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not connect", id)
	}
	return svc, stop
}

// listen subscribes a client (as id) to topic and hands over each payload.
func (r *chainRig) listen(t *testing.T, id, topic string) chan []byte {
	t.Helper()
	ch := make(chan []byte, 100)
	o := paho.NewClientOptions().AddBroker(r.b.URL()).SetClientID(id).SetUsername(id).SetPassword(r.auth.Password(id))
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { ch <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscribe %s: %v", id, topic, tok.Error())
	}
	return ch
}

// chainT0 is recent: HQ prunes observations by its clock.
var chainT0 = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

// pay is an allowed sale of account at store (register r1), min minutes
// after chainT0, with the register's event sequence seq.
func pay(store, account string, seq uint64, min int) event.Event {
	ev := decision(store, "r1", seq, policy.Allow)
	ev.At = chainT0.Add(time.Duration(min) * time.Minute)
	ev.Request.At = ev.At
	ev.Request.Payment.Account = account
	return ev
}

func waitDelta(t *testing.T, ch chan []byte, trusted []bundle.TrustedKey) wire.Delta {
	t.Helper()
	select {
	case b := <-ch:
		d, err := bundle.VerifyDelta(b, trusted)
		if err != nil {
			t.Fatalf("delta: %v", err)
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no denylist delta")
	}
	return wire.Delta{}
}

// The crew's account pays at three stores: HQ raises the alert (feed,
// store displays), denylists the account with an expiry naming the rule,
// opens a case; the entry is removed when it expires. The shadow rule
// fires (counted, in the feed) and does nothing else.
func TestChainRuleActs(t *testing.T) {
	r := newChainRig(t, "hq")
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, _ := r.run(t, "hq", st, "")
	api := serveAPI(t, svc, APILimits())
	deltas := r.listen(t, "s4/r1", wire.DenylistDelta)
	display := r.listen(t, "display/s3", wire.StoreAlertsTopic("s3"))

	regs := map[string]paho.Client{}
	for _, s := range []string{"s1", "s2", "s3"} {
		regs[s], _ = register(t, r.auth, r.b.URL(), s, "r1")
	}
	publish(t, regs["s1"], wire.EventsTopic("s1", "r1"), pay("s1", "acct-crew", 1, 0))
	publish(t, regs["s2"], wire.EventsTopic("s2", "r1"), pay("s2", "acct-crew", 1, 10))
	// The shadow rule (2 stores) fired: in the feed, no delta.
	waitFor(t, "the shadow alert", func() bool {
		as, _ := st.Alerts(context.Background(), store.Query{Store: event.HQStore})
		return len(as) == 1 && as[0].Chain.Rule == "quiet" && as[0].Chain.Mode == chain.ModeShadow
	})
	publish(t, regs["s3"], wire.EventsTopic("s3", "r1"), pay("s3", "acct-crew", 1, 20))

	d := waitDelta(t, deltas, r.trusted)
	det, ok := d.Details["acct-crew"]
	if !slices.Equal(d.Add, []string{"acct-crew"}) || !ok || det.Rule != "crew-hopping" ||
		!strings.HasPrefix(det.Reason, "account_stores: account paid at 3 stores") || len(det.Events) != 3 {
		t.Fatalf("delta = %+v", d)
	}
	if got := time.Until(det.ExpiresAt); got < 50*time.Minute || got > 61*time.Minute {
		t.Errorf("expires in %s, want about 1h", got)
	}
	select {
	case b := <-display:
		ev, err := event.Parse(b)
		if err != nil || ev.Chain.Rule != "crew-hopping" || !slices.Equal(ev.Chain.Stores, []string{"s1", "s2", "s3"}) {
			t.Fatalf("display alert %v: %+v", err, ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert on the store's display topic")
	}
	waitFor(t, "the case", func() bool { return slices.Equal(r.cases.got(), []string{"acct-crew@s3:crew-hopping"}) })

	var rules struct {
		Name  string      `json:"name"`
		Rules []chainRule `json:"rules"`
	}
	// quiet fired at s2 and again at s3 (a further new store).
	waitFor(t, "the fire counts", func() bool {
		getJSON(t, api.URL+"/v1/chain/rules", &rules)
		return rules.Name == "test" && len(rules.Rules) == 2 && rules.Rules[0].Fires == 1 && rules.Rules[1].Fires == 2
	})

	// An hour later the automatic entry expires: HQ removes it with a delta.
	r.now.Add(int64(61 * time.Minute))
	d = waitDelta(t, deltas, r.trusted)
	if !slices.Equal(d.Remove, []string{"acct-crew"}) {
		t.Fatalf("expiry delta = %+v", d)
	}
	if _, accounts, _ := st.Denylist(context.Background()); len(accounts) != 0 {
		t.Errorf("denylist after expiry = %v", accounts)
	}
	evs, _ := st.Events(context.Background(), store.Query{Store: event.HQStore, Types: []event.Type{event.DenylistChanged}})
	if len(evs) != 2 || evs[1].Denylist.By != "hq" || evs[1].Denylist.Reason != "expired" || evs[0].Denylist.By != "chain:crew-hopping" {
		t.Errorf("denylist records = %+v", evs)
	}
}

// Restart in the middle of a window: the counts are in the store, so the
// third store after the restart completes what the first two began.
func TestChainRestartMidWindow(t *testing.T) {
	r := newChainRig(t, "hq")
	path := filepath.Join(t.TempDir(), "hq.db")
	open := func() store.Store {
		st, err := store.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	deltas := r.listen(t, "s4/r1", wire.DenylistDelta)
	regs := map[string]paho.Client{}
	acks := map[string]chan wire.Ack{}
	for _, s := range []string{"s1", "s2", "s3"} {
		regs[s], acks[s] = register(t, r.auth, r.b.URL(), s, "r1")
	}
	st := open()
	_, stop := r.run(t, "hq", st, "")
	publish(t, regs["s1"], wire.EventsTopic("s1", "r1"), pay("s1", "acct-crew", 1, 0))
	publish(t, regs["s2"], wire.EventsTopic("s2", "r1"), pay("s2", "acct-crew", 1, 10))
	collectAcks(t, acks["s1"], 1)
	collectAcks(t, acks["s2"], 1)
	stop()
	st.Close()

	st = open()
	defer st.Close()
	r.run(t, "hq", st, "")
	publish(t, regs["s3"], wire.EventsTopic("s3", "r1"), pay("s3", "acct-crew", 1, 20))
	if d := waitDelta(t, deltas, r.trusted); !slices.Equal(d.Add, []string{"acct-crew"}) {
		t.Fatalf("delta = %+v", d)
	}
}

// Two HQ instances sharing the load (--share) on one PostgreSQL database
// (each with its own connections), or in one process on one bbolt file:
// every account paying at three stores is denylisted exactly once,
// whichever instance got which of its events, and no event is counted
// twice.
func TestChainTwoInstances(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		url := testenv.PostgresURL(t)
		twoInstances(t, func() store.Store {
			st, err := store.OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("bolt", func(t *testing.T) {
		st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
		if err != nil {
			t.Fatal(err)
		}
		twoInstances(t, func() store.Store { return st })
	})
}

func twoInstances(t *testing.T, open func() store.Store) {
	r := newChainRig(t, "hq-a", "hq-b")
	var stores []store.Store
	for _, id := range []string{"hq-a", "hq-b"} {
		st := open()
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		r.run(t, id, st, "ingest")
	}
	deltas := r.listen(t, "s4/r1", wire.DenylistDelta)
	regs := map[string]paho.Client{}
	for _, s := range []string{"s1", "s2", "s3"} {
		regs[s], _ = register(t, r.auth, r.b.URL(), s, "r1")
	}
	const accounts = 30
	seq := map[string]uint64{}
	for i := range accounts {
		for j, s := range []string{"s1", "s2", "s3"} {
			seq[s]++
			ev := pay(s, fmt.Sprintf("acct-%02d", i), seq[s], j)
			publish(t, regs[s], wire.EventsTopic(s, "r1"), ev)
			// And again: a register that missed its ack resends.
			publish(t, regs[s], wire.EventsTopic(s, "r1"), ev)
		}
	}
	added := map[string]int{}
	for n := 0; n < accounts; {
		select {
		case b := <-deltas:
			d, err := bundle.VerifyDelta(b, r.trusted)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range d.Add {
				added[a]++
				n++
			}
		case <-time.After(10 * time.Second):
			fires, err := stores[0].ChainFires(context.Background())
			t.Fatalf("%d accounts denylisted, want %d: %v; fires %v (%v)", n, accounts, added, fires, err)
		}
	}
	select {
	case b := <-deltas:
		d, _ := bundle.VerifyDelta(b, r.trusted)
		t.Fatalf("a further delta: %+v", d)
	case <-time.After(500 * time.Millisecond):
	}
	for a, n := range added {
		if n != 1 {
			t.Errorf("%s added %d times", a, n)
		}
	}
	fires, err := stores[0].ChainFires(context.Background())
	if err != nil || fires["crew-hopping"] != accounts {
		t.Errorf("fires = %v (%v), want %d crew-hopping", fires, err, accounts)
	}
}

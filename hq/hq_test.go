package hq

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

var t0 = time.Date(2019, 7, 3, 10, 0, 0, 0, time.UTC)

type fixture struct {
	api     *apiauth.Tokens // the API's tokens; nil: open
	b       *broker.Broker
	auth    *embedtest.Auth
	st      store.Store
	svc     *Service
	http    *httptest.Server
	trusted []bundle.TrustedKey
	stop    func()
	skew    atomic.Int64         // added to the wall clock HQ sees, in ns
	reg     *prometheus.Registry // the running service's metrics
	// configure, when set, adjusts HQ's configuration before each start.
	configure func(*Config)
}

func start(t *testing.T) *fixture { t.Helper(); return startWith(t, nil) }

func startWith(t *testing.T, api *apiauth.Tokens) *fixture {
	t.Helper()
	return startConfigured(t, api, nil)
}

// startConfigured is startWith with configure applied to HQ's
// configuration.
func startConfigured(t *testing.T, api *apiauth.Tokens, configure func(*Config)) *fixture {
	t.Helper()
	b, auth := embedtest.Start(t, "hq", "hq-push", "s1/r1", "s1/r2", "s1/r3")
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, priv, _ := ed25519.GenerateKey(nil)
	f := &fixture{api: api, b: b, auth: auth, st: st, trusted: []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}, configure: configure}
	f.run(t, priv)
	return f
}

// run starts (or restarts) the HQ service on the fixture's broker and store.
func (f *fixture) run(t *testing.T, priv ed25519.PrivateKey) {
	t.Helper()
	f.reg = prometheus.NewRegistry()
	cfg := Config{MQTT: f.auth.MQTT(f.b.URL(), "hq"), Store: f.st, Auth: f.api, Registry: f.reg,
		Signer: priv, SignerAlg: "EdDSA", SignerKID: "hq1",
		Now: func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }}
	if f.configure != nil {
		f.configure(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	f.svc = svc
	f.http = serveAPI(t, svc, APILimits())
	f.stop = func() { cancel(); <-done; f.http.Close() }
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			f.stop()
		}
	})
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("HQ did not connect and subscribe")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// register is a test MQTT client with a register's identity.
func register(t *testing.T, auth *embedtest.Auth, url, store, reg string) (paho.Client, chan wire.Ack) {
	t.Helper()
	acks := make(chan wire.Ack, 100)
	id := wire.Username(store, reg)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword(auth.Password(id))
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("register connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(wire.AckTopic(store, reg), 1, func(_ paho.Client, m paho.Message) {
		a, err := wire.ParseAck(m.Payload())
		if err != nil {
			t.Errorf("bad ack: %v", err)
			return
		}
		acks <- a
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe ack: %v", tok.Error())
	}
	return c, acks
}

func decision(store, reg string, seq uint64, out policy.Outcome) event.Event {
	sale := fmt.Sprintf("sale-%d", seq)
	at := t0.Add(time.Duration(seq) * time.Second)
	return event.Event{
		ID: event.ID(store, reg, "e1", seq), Seq: seq, Type: event.Decision, Store: store, Register: reg, At: at, SaleID: sale,
		Request:  &policy.Request{SaleID: sale, Store: store, Register: reg, At: at, Payment: policy.Payment{Kind: "pg1", Account: "acct"}},
		Decision: &policy.Decision{Outcome: out, Policy: policy.PolicyRef{Name: "p", Version: 1}},
	}
}

func publish(t *testing.T, c paho.Client, topic string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func collectAcks(t *testing.T, acks chan wire.Ack, want int) []string {
	t.Helper()
	var ids []string
	timeout := time.After(10 * time.Second)
	for len(ids) < want {
		select {
		case a := <-acks:
			ids = append(ids, a.IDs...)
		case <-timeout:
			t.Fatalf("got %d acked ids, want %d: %v", len(ids), want, ids)
		}
	}
	return ids
}

func TestIngestStoresOnceAndAcks(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	evs := []event.Event{decision("s1", "r1", 1, policy.Allow), decision("s1", "r1", 2, policy.Deny)}
	for _, ev := range evs {
		publish(t, c, wire.EventsTopic("s1", "r1"), ev)
	}
	got := collectAcks(t, acks, 2)
	slices.Sort(got)
	if !slices.Equal(got, []string{evs[0].ID, evs[1].ID}) {
		t.Fatalf("acked %v", got)
	}
	// The register missed the ack and resends: acked again, stored once.
	publish(t, c, wire.EventsTopic("s1", "r1"), evs[0])
	if again := collectAcks(t, acks, 1); again[0] != evs[0].ID {
		t.Fatalf("re-ack = %v", again)
	}
	stored, err := f.st.Events(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("stored %d events, want 2", len(stored))
	}
}

func TestIngestRefusesSpoofedEvent(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	// On its own topic, but claiming to be another register.
	publish(t, c, wire.EventsTopic("s1", "r1"), decision("s1", "r9", 1, policy.Allow))
	publish(t, c, wire.EventsTopic("s1", "r1"), "not an event")
	ok := decision("s1", "r1", 1, policy.Allow)
	publish(t, c, wire.EventsTopic("s1", "r1"), ok)
	if got := collectAcks(t, acks, 1); got[0] != ok.ID {
		t.Fatalf("acked %v, want only %s", got, ok.ID)
	}
	stored, _ := f.st.Events(context.Background(), store.Query{})
	if len(stored) != 1 || stored[0].ID != ok.ID {
		t.Fatalf("stored %v, want only the genuine event", stored)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestFleetAndQueries(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	st := wire.Status{Store: "s1", Register: "r1", Online: true, Version: "test", OutboxDepth: 4,
		Policy: &wire.PolicyInfo{Name: "chain-default", Version: 3}, Links: wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp}, At: t0}
	publish(t, c, wire.StatusTopic("s1", "r1"), st)
	alert := decision("s1", "r1", 2, policy.Deny)
	alert.Type = event.Alert
	alert.Decision.Rules = []policy.Fired{{ID: "carton-cap", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 3 > limit 2",
		Reasons: []sale.Reason{{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: sale.Names{ID: "tobacco-carton", JA: "タバコ(カートン)", EN: "tobacco cartons"}}}}}
	publish(t, c, wire.EventsTopic("s1", "r1"), decision("s1", "r1", 1, policy.Allow))
	publish(t, c, wire.AlertsTopic("s1", "r1"), alert)
	collectAcks(t, acks, 2)

	var fleet []fleetEntry
	waitFor(t, "fleet entry", func() bool {
		getJSON(t, f.http.URL+"/v1/fleet", &fleet)
		return len(fleet) == 1
	})
	if e := fleet[0]; !e.Online || e.PolicyVersion != 3 || e.OutboxDepth != 4 || e.Store != "s1" {
		t.Fatalf("fleet entry = %+v", e)
	}
	var alerts []struct {
		event.Event
		Text struct{ JA, EN []string }
	}
	getJSON(t, f.http.URL+"/v1/alerts?store=s1", &alerts)
	if len(alerts) != 1 || alerts[0].ID != alert.ID {
		t.Fatalf("alerts = %v", alerts)
	}
	// The reasons as the staff read them, from the shared templates.
	if txt := alerts[0].Text; len(txt.JA) != 1 || txt.JA[0] != "タバコ(カートン) 3点 > 上限 2点" || txt.EN[0] != "tobacco cartons 3 > limit 2" {
		t.Errorf("alert text = %+v", txt)
	}
	var evs []event.Event
	getJSON(t, f.http.URL+"/v1/events?store=s1&register=r1&account=acct&since="+t0.Format(time.RFC3339), &evs)
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	getJSON(t, f.http.URL+"/v1/events?store=s2", &evs)
	if len(evs) != 0 {
		t.Fatalf("other store's events = %d, want 0", len(evs))
	}
	resp, err := http.Get(f.http.URL + "/v1/events?since=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad since: %s, want 400", resp.Status)
	}
	// A held sale, then the manager's resolution: /v1/alerts shows it
	// resolved, with who and when.
	held := decision("s1", "r1", 3, policy.Review)
	held.Type = event.Alert
	publish(t, c, wire.AlertsTopic("s1", "r1"), held)
	resAt := t0.Add(time.Hour)
	publish(t, c, wire.EventsTopic("s1", "r1"), event.Event{ID: event.ID("s1", "r1", "e1", 4), Seq: 4, Type: event.Resolution,
		Store: "s1", Register: "r1", At: resAt, SaleID: held.SaleID,
		Resolution: &event.ResolutionInfo{ReviewID: held.SaleID, Action: event.Approve, By: "display s1", At: resAt}})
	collectAcks(t, acks, 2)
	var states []struct {
		ID         string                `json:"id"`
		State      string                `json:"state"`
		Resolution *event.ResolutionInfo `json:"resolution"`
	}
	getJSON(t, f.http.URL+"/v1/alerts?store=s1", &states)
	if len(states) != 2 || states[0].State != "denied" || states[0].Resolution != nil ||
		states[1].ID != held.ID || states[1].State != "approved" || states[1].Resolution == nil ||
		states[1].Resolution.By != "display s1" || !states[1].Resolution.At.Equal(resAt) {
		t.Fatalf("alert states = %+v", states)
	}
}

func TestDenylistPushAndResync(t *testing.T) {
	f := start(t)
	c, _ := register(t, f.auth, f.b.URL(), "s1", "r1")
	deltas, snaps := make(chan wire.Delta, 10), make(chan wire.Snapshot, 10)
	c.Subscribe(wire.DenylistDelta, 1, func(_ paho.Client, m paho.Message) {
		d, err := bundle.VerifyDelta(m.Payload(), f.trusted)
		if err != nil {
			t.Errorf("delta does not verify: %v", err)
		}
		deltas <- d
	}).Wait()
	c.Subscribe(wire.DenylistSnapshot, 1, func(_ paho.Client, m paho.Message) {
		s, err := bundle.VerifySnapshot(m.Payload(), f.trusted)
		if err != nil {
			t.Errorf("snapshot does not verify: %v", err)
		}
		snaps <- s
	}).Wait()

	resp, err := http.Post(f.http.URL+"/v1/denylist", "application/json", strings.NewReader(`{"add":["acct-stolen-1","acct-stolen-2"],"reason":"reported stolen"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/denylist: %s", resp.Status)
	}
	select {
	case d := <-deltas:
		if d.Seq != 1 || len(d.Add) != 2 {
			t.Fatalf("delta = %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delta published")
	}
	select {
	case s := <-snaps:
		if s.Seq != 1 || len(s.Accounts) != 2 {
			t.Fatalf("snapshot = %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot published")
	}

	// A register that saw a gap asks for a resync on its cmd topic. Right
	// after a change the retained snapshot is the answer: HQ does not
	// publish it again for every register asking.
	resync := func(id string) {
		publish(t, c, wire.CmdTopic("s1", "r1"), wire.Command{ID: id, Type: wire.CmdResync, Store: "s1", Register: "r1", HaveSeq: 0, At: t0})
	}
	resync("s1/r1/e1/resync-1")
	select {
	case s := <-snaps:
		t.Fatalf("resync right after a change published snapshot %d again", s.Seq)
	case <-time.After(500 * time.Millisecond):
	}
	f.skew.Add(int64(resyncCoalesce))
	resync("s1/r1/e1/resync-2")
	select {
	case s := <-snaps:
		if s.Seq != 1 {
			t.Fatalf("resync snapshot = %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("resync not answered with a snapshot")
	}

	for _, body := range []string{`{}`, `{"add":[""],"reason":"x"}`, `not json`, `{"add":["a"],"reason":"x","extra":1}`,
		`{"add":["a"]}`, `{"add":["a"],"reason":"  "}`, `{"add":["a"],"reason":"a\u0000b"}`} {
		resp, err := http.Post(f.http.URL+"/v1/denylist", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", body, resp.Status)
		}
	}
}

// TestRestartLosesNothing stops HQ while a register keeps publishing, as
// the register's outbox does: it resends whatever HQ has not acked. The
// persistent session queues QoS 1 events in the broker while HQ is down;
// events HQ stored but could not ack on its way down come back and are
// acked, not stored twice.
func TestRestartLosesNothing(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	const n = 300
	unacked := make(map[string]event.Event)
	for i := 1; i <= n; i++ {
		if i == n/3 {
			f.stop()
		}
		if i == 2*n/3 {
			_, priv, _ := ed25519.GenerateKey(nil)
			f.run(t, priv)
		}
		ev := decision("s1", "r1", uint64(i), policy.Allow)
		unacked[ev.ID] = ev
		publish(t, c, wire.EventsTopic("s1", "r1"), ev)
	}
	for round := 0; len(unacked) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d events still unacked after %d resend rounds", len(unacked), round)
		}
		quiet := time.After(time.Second)
	drain:
		for {
			select {
			case a := <-acks:
				for _, id := range a.IDs {
					delete(unacked, id)
				}
			case <-quiet:
				break drain
			}
		}
		for _, ev := range unacked {
			publish(t, c, wire.EventsTopic("s1", "r1"), ev)
		}
	}
	stored, err := f.st.Events(context.Background(), store.Query{Limit: 10 * n})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for _, ev := range stored {
		if seen[ev.ID] {
			t.Fatalf("event %s stored twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	if len(stored) != n {
		t.Fatalf("stored %d events, want %d", len(stored), n)
	}
}

// TestExportJSONL exports more events than one page holds, as `policy test`
// input: every event once, each line a valid event.
func TestExportJSONL(t *testing.T) {
	f := start(t)
	const n = 2*store.DefaultLimit + 17
	var evs []event.Event
	for i := 1; i <= n; i++ {
		ev := decision("s1", "r1", uint64(i), policy.Allow)
		ev.At = t0.Add(time.Duration(i/10) * time.Second) // ten events per timestamp
		evs = append(evs, ev)
	}
	if _, err := f.st.SaveEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(f.http.URL + "/v1/events?format=jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, event.MaxSize)
	for sc.Scan() {
		ev, err := event.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", len(seen)+1, err)
		}
		if seen[ev.ID] {
			t.Fatalf("event %s exported twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("exported %d events, want %d", len(seen), n)
	}
}

// TestSharedSubscriptionSplitsLoad runs two HQ instances in one share group
// on one broker and one store: each event is stored once and acked, and
// both instances take part.
func TestSharedSubscriptionSplitsLoad(t *testing.T) {
	b, auth := embedtest.Start(t, "hq-a", "hq-b", "s1/r1")
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var svcs []*Service
	for _, id := range []string{"hq-a", "hq-b"} {
		svc, err := New(Config{MQTT: auth.MQTT(b.URL(), id), ShareGroup: "ingest", Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-svc.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not connect", id)
		}
		svcs = append(svcs, svc)
	}
	c, acks := register(t, auth, b.URL(), "s1", "r1")
	const n = 200
	for i := 1; i <= n; i++ {
		publish(t, c, wire.EventsTopic("s1", "r1"), decision("s1", "r1", uint64(i), policy.Allow))
	}
	got := collectAcks(t, acks, n)
	slices.Sort(got)
	if got = slices.Compact(got); len(got) != n {
		t.Fatalf("%d distinct ids acked, want %d", len(got), n)
	}
	stored, err := st.Events(context.Background(), store.Query{Limit: 10 * n})
	if err != nil || len(stored) != n {
		t.Fatalf("stored %d events (err %v), want %d", len(stored), err, n)
	}
	for i, svc := range svcs {
		if !svc.client.IsConnectionOpen() {
			t.Fatal("an instance lost its connection: client ids collide?")
		}
		if n := testutil.ToFloat64(svc.m.stored); n == 0 {
			t.Errorf("instance %d stored no event: the group did not split the load", i)
		}
	}
}

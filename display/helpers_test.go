package display

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/brokertest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

const testStore = "S001"

// rig is a display under test: a real broker, a real server on a real port.
type rig struct {
	t      *testing.T
	broker *brokertest.Broker
	cfg    Config
	srv    *Server
	base   string // http://127.0.0.1:PORT
	stop   func()
}

// startRig runs a broker and a display; mod may adjust the config.
func startRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	b := brokertest.Start(t)
	cfg := Config{
		Store: testStore, MQTT: mqttconn.Config{Broker: b.URL()}, ReviewTimeout: 2 * time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	r := &rig{t: t, broker: b, cfg: cfg}
	r.serve("127.0.0.1:0")
	t.Cleanup(r.stopServer)
	r.waitBroker(true)
	return r
}

// serve starts a fresh display server on addr.
func (r *rig) serve(addr string) {
	r.t.Helper()
	srv, err := New(r.cfg)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	r.srv, r.base = srv, "http://"+ln.Addr().String()
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				r.t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			r.t.Error("Serve did not return within 15s of its context ending")
		}
	}
}

// stopServer stops the display server (idempotent).
func (r *rig) stopServer() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// restartServer starts a new display server on the old address.
func (r *rig) restartServer(addr string) {
	r.t.Helper()
	r.stopServer()
	r.serve(addr)
	r.waitBroker(true)
}

// waitBroker waits until the display reports the broker link up or down.
func (r *rig) waitBroker(up bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.brokerState().Connected != up {
		if time.Now().After(deadline) {
			r.t.Fatalf("display broker link never became connected=%v", up)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPending waits until the display holds an open review.
func (r *rig) waitPending(register, reviewID string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !r.srv.board.Pending(register, reviewID) {
		if time.Now().After(deadline) {
			r.t.Fatalf("review %s of %s never arrived", reviewID, register)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) publish(topic string, v any, retain bool) {
	r.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.broker.Publish(topic, b, retain); err != nil {
		r.t.Fatal(err)
	}
}

// page is a browser-like HTTP client with a cookie jar.
type page struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

var csrfRe = regexp.MustCompile(`data-csrf="([^"]+)"`)

// open loads the page (starting a session) and remembers its CSRF token.
func (r *rig) open() *page { return r.openAs(nil) }

// openAs opens the page through transport (nil: the default, from
// 127.0.0.1).
func (r *rig) openAs(transport http.RoundTripper) *page {
	r.t.Helper()
	jar, _ := cookiejar.New(nil)
	return r.openWith(&http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: transport})
}

// openWith loads the page with client c (its cookies, its session).
func (r *rig) openWith(c *http.Client) *page {
	r.t.Helper()
	p := &page{t: r.t, c: c, base: r.base}
	res, err := p.c.Get(r.base + "/")
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if res.StatusCode != 200 || m == nil {
		r.t.Fatalf("GET /: status %d, csrf found %v", res.StatusCode, m != nil)
	}
	p.csrf = string(m[1])
	return p
}

// stream is an SSE connection read in the background.
type stream struct {
	msgs chan sse.Message
	stop func()
}

func (p *page) stream() *stream {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/events", nil)
	c := *p.c
	c.Timeout = 0
	res, err := c.Do(req)
	if err != nil {
		cancel()
		p.t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		p.t.Fatalf("GET /events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &stream{msgs: make(chan sse.Message, 100), stop: func() { cancel(); res.Body.Close() }}
	go func() {
		defer close(s.msgs)
		rd := sse.NewReader(res.Body)
		for {
			m, err := rd.Next()
			if err != nil {
				return
			}
			s.msgs <- m
		}
	}()
	p.t.Cleanup(s.stop)
	return s
}

// next returns the next message of one of the given event names, skipping
// others.
func (s *stream) next(t *testing.T, names ...string) sse.Message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("stream closed waiting for %v", names)
			}
			for _, n := range names {
				if m.Event == n {
					return m
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 10s", names)
		}
	}
}

func (p *page) resolve(req ResolveRequest, csrf string) (int, ResolveResponse) {
	p.t.Helper()
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest("POST", p.base+"/api/resolve", strings.NewReader(string(b)))
	hr.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		hr.Header.Set(CSRFHeader, csrf)
	}
	res, err := p.c.Do(hr)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	var out ResolveResponse
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// alertEvent builds the alert event a register publishes: a tobacco carton
// sale held for review or denied.
var cartonNames = sale.Names{ID: "tobacco-carton", JA: "タバコ(カートン)", EN: "tobacco cartons"}

func alertEvent(store, reg string, seq uint64, outcome policy.Outcome, at time.Time) event.Event {
	saleID := "sale-" + reg + "-" + itoa(seq)
	return event.Event{
		ID: event.ID(store, reg, "ep1", seq), Seq: seq, Type: event.Alert,
		Store: store, Register: reg, At: at, SaleID: saleID,
		Request: &policy.Request{
			SaleID: saleID, Store: store, Register: reg, At: at,
			Lines: []policy.Line{
				{JAN: "4901234567894", Category: "tobacco-carton", Quantity: 5, UnitPrice: 5800},
				{JAN: "4909876543210", Category: "tobacco-carton", Quantity: 1, UnitPrice: 5800},
				{JAN: "4900000000017", Category: "drink", Quantity: 2, UnitPrice: 150},
			},
			Payment: policy.Payment{Kind: "pg1", Issuer: "7pay", Account: "acct-7f3a9c21"},
		},
		Decision: &policy.Decision{
			Outcome: outcome,
			Policy:  policy.PolicyRef{Name: "stores", Version: 3},
			Rules: []policy.Fired{
				{ID: "tobacco-cartons", Action: string(outcome), Mode: "enforce", Reason: "tobacco cartons 6 > limit 2",
					Reasons: []sale.Reason{{Code: sale.CodeCartQuantity, Value: 6, Limit: 2, Unit: sale.UnitItems, Category: cartonNames}}},
				{ID: "new-device", Action: "score", Mode: "enforce", Score: 25, Reason: "device bound 10m0s before the sale < minimum 24h0m0s",
					Reasons: []sale.Reason{{Code: sale.CodeNewDevice, Value: 600, Limit: 86400, Unit: sale.UnitSeconds, Ago: 600}}},
				{ID: "fresh-topup", Action: "score", Mode: "shadow", Score: 35, Reason: "top-up ¥90,000 12m0s before a ¥34,800 sale (within 1h0m0s)",
					Reasons: []sale.Reason{{Code: sale.CodeFreshTopUp, Value: 34800, Unit: sale.UnitYen, Window: 3600, Ago: 720, TopUp: 90000}}},
			},
			Score:       25,
			ShadowScore: 35,
			Categories:  []sale.Names{cartonNames, {ID: "drink", JA: "飲料", EN: "drinks"}},
		},
	}
}

func resolutionEvent(store, reg string, seq uint64, reviewID, action string, at time.Time) event.Event {
	return event.Event{
		ID: event.ID(store, reg, "ep1", seq), Seq: seq, Type: event.Resolution,
		Store: store, Register: reg, At: at, SaleID: reviewID,
		Resolution: &event.ResolutionInfo{ReviewID: reviewID, Action: action, By: "manager-tanaka", At: at},
	}
}

// refusalEvent is the register refusing a resolution of reviewID with code
// ("" as a register built before codes sent it) and the sentence why.
func refusalEvent(store, reg string, seq uint64, reviewID string, code event.Code, why string, at time.Time) event.Event {
	return event.Event{
		ID: event.ID(store, reg, "ep1", seq), Seq: seq, Type: event.Refusal,
		Store: store, Register: reg, At: at, Code: code,
		Detail:     "resolution of review " + reviewID + " refused: " + why,
		Resolution: &event.ResolutionInfo{ReviewID: reviewID, Action: event.Approve, By: "display " + store, At: at},
	}
}

func status(store, reg string, online bool, at time.Time) wire.Status {
	return wire.Status{
		Store: store, Register: reg, Online: online, Version: "test", At: at,
		Policy:       &wire.PolicyInfo{Name: "stores", Version: 3},
		Links:        wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp},
		LastDecision: &wire.DecisionSummary{SaleID: "s1", Outcome: "allow", At: at},
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// registerClient is a test's stand-in for a register: a paho client on the
// real broker that records the commands on its cmd topic.
func registerClient(t *testing.T, brokerURL, store, reg string) <-chan paho.Message {
	t.Helper()
	got := make(chan paho.Message, 10)
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(wire.ClientID(store, reg)).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("register connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(wire.CmdTopic(store, reg), 1, func(_ paho.Client, m paho.Message) { got <- m })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("register subscribe: %v", tok.Error())
	}
	return got
}

var errTimeout = errors.New("timeout")

func recvCmd(ch <-chan paho.Message, d time.Duration) (paho.Message, error) {
	select {
	case m := <-ch:
		return m, nil
	case <-time.After(d):
		return nil, errTimeout
	}
}

package hq

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

// cartonAlert is an alert of outcome out that fired carton-cap, with a
// cart of two cartons at 6,000 yen and account "acct-1234".
func cartonAlert(store, reg string, seq uint64, out policy.Outcome) event.Event {
	ev := decision(store, reg, seq, out)
	ev.Type = event.Alert
	ev.Request.Payment.Account = "acct-1234"
	ev.Request.Lines = []sale.Line{{JAN: "4900000000001", Category: "tobacco-carton", Quantity: 2, UnitPrice: 6000}}
	ev.Decision.Rules = []policy.Fired{{ID: "carton-cap", Action: string(out), Mode: "enforce", Reason: "tobacco cartons 2 > limit 1",
		Reasons: []sale.Reason{{Code: sale.CodeCartQuantity, Value: 2, Limit: 1, Category: sale.Names{ID: "tobacco-carton", JA: "タバコ(カートン)", EN: "tobacco cartons"}}}}}
	return ev
}

// stream opens GET path as SSE, with lastID as Last-Event-ID when set, and
// reads up to the "ready" event.
func stream(t *testing.T, base, path, lastID string) (*sse.Reader, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return nil, resp
	}
	rd := sse.NewReader(resp.Body)
	if m, err := rd.Next(); err != nil || m.Event != "ready" {
		t.Fatalf("first event %+v, %v; want ready", m, err)
	}
	return rd, resp
}

// nextAlert reads the next alert of a stream, failing after 10 s.
func nextAlert(t *testing.T, rd *sse.Reader) (alertView, string) {
	t.Helper()
	type res struct {
		m   sse.Message
		err error
	}
	ch := make(chan res, 1)
	go func() { m, err := rd.Next(); ch <- res{m, err} }()
	select {
	case r := <-ch:
		if r.err != nil || r.m.Event != "alert" {
			t.Fatalf("next event %+v, %v; want an alert", r.m, r.err)
		}
		var v alertView
		if err := json.Unmarshal(r.m.Data, &v); err != nil {
			t.Fatal(err)
		}
		return v, r.m.ID
	case <-time.After(10 * time.Second):
		t.Fatal("no alert within 10 s")
	}
	return alertView{}, ""
}

// TestAlertStream: a register's alerts reach a filtered stream as they are
// stored, with their reasons, masked account and cart total; a reconnect
// with Last-Event-ID goes on after the last alert seen.
func TestAlertStream(t *testing.T) {
	f := start(t)
	rd, _ := stream(t, f.http.URL, "/v1/alerts/stream?store=s1&outcome=deny", "")
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	review, deny := cartonAlert("s1", "r1", 1, policy.Review), cartonAlert("s1", "r1", 2, policy.Deny)
	publish(t, c, wire.AlertsTopic("s1", "r1"), review)
	publish(t, c, wire.AlertsTopic("s1", "r1"), deny)
	collectAcks(t, acks, 2)
	got, id := nextAlert(t, rd)
	if got.ID != deny.ID || got.State != store.AlertDenied || got.MaskedAccount != "…1234" || got.Amount != 12000 ||
		got.Text == nil || got.Text.JA[0] != "タバコ(カートン) 2点 > 上限 1点" || got.Text.EN[0] != "tobacco cartons 2 > limit 1" {
		t.Fatalf("streamed %+v", got)
	}
	// The browser reconnects with the last id: what came meanwhile, once.
	deny2 := cartonAlert("s1", "r1", 3, policy.Deny)
	publish(t, c, wire.AlertsTopic("s1", "r1"), deny2)
	collectAcks(t, acks, 1)
	rd2, _ := stream(t, f.http.URL, "/v1/alerts/stream?store=s1&outcome=deny", id)
	if got, _ := nextAlert(t, rd2); got.ID != deny2.ID {
		t.Fatalf("after a reconnect: %s, want %s", got.ID, deny2.ID)
	}
	for _, tt := range []struct{ path, lastID string }{
		{"/v1/alerts/stream", "not-a-position"},
		{"/v1/alerts/stream", "t1700000000000000.aWQ"}, // a PostgreSQL position on bbolt
		{"/v1/alerts/stream?outcome=maybe", ""},
		{"/v1/alerts/stream?since=yesterday", ""},
	} {
		if _, resp := stream(t, f.http.URL, tt.path, tt.lastID); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s with Last-Event-ID %q: %s, want 400", tt.path, tt.lastID, resp.Status)
		}
	}
}

// TestAlertStreamSharedDatabase: HQ instances on one PostgreSQL database
// each ingest their share; a console on instance A sees the alerts B
// stored, within a poll.
func TestAlertStreamSharedDatabase(t *testing.T) {
	pgURL := testenv.PostgresURL(t)
	ctx := context.Background()
	open := func() store.Store {
		st, err := store.OpenPostgres(ctx, pgURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	b, auth := embedtest.Start(t, "hq")
	a, err := New(Config{MQTT: auth.MQTT(b.URL(), "hq"), Store: open()})
	if err != nil {
		t.Fatal(err)
	}
	api := serveAPI(t, a, APILimits())
	rd, _ := stream(t, api.URL, "/v1/alerts/stream?rule=carton-cap", "")
	other := open() // instance B's connection
	ev := cartonAlert("s2", "r9", 1, policy.Review)
	if _, err := other.SaveEvents(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got, _ := nextAlert(t, rd)
	if got.ID != ev.ID || got.State != store.AlertOpen {
		t.Fatalf("streamed %+v", got)
	}
}

// TestStatsAPI: the charts' numbers come from the rollup, a redelivered
// decision counted once.
func TestStatsAPI(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	deny := cartonAlert("s1", "r1", 1, policy.Deny)
	deny.Type = event.Decision
	review := cartonAlert("s1", "r1", 2, policy.Review)
	review.Type = event.Decision
	for _, ev := range []event.Event{deny, review, deny} { // the deny again: a lost ack
		publish(t, c, wire.EventsTopic("s1", "r1"), ev)
	}
	collectAcks(t, acks, 3)
	since := url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339))
	var hours []store.HourStats
	getJSON(t, f.http.URL+"/v1/stats/hourly?store=s1&since="+since, &hours)
	want := store.HourStats{Hour: t0.Truncate(time.Hour), Store: "s1", Decisions: 2, Reviews: 1, Denies: 1, YenRefused: 12000}
	if len(hours) != 1 || hours[0] != want {
		t.Fatalf("hourly stats %+v, want %+v", hours, want)
	}
	var rules []store.RuleStats
	getJSON(t, f.http.URL+"/v1/stats/rules?limit=5&since="+since, &rules)
	if len(rules) != 1 || rules[0] != (store.RuleStats{Rule: "carton-cap", Fired: 2}) {
		t.Fatalf("rule stats %+v", rules)
	}
	// With no since, the last day: the 2019 sales are not in it.
	getJSON(t, f.http.URL+"/v1/stats/hourly", &hours)
	if len(hours) != 0 {
		t.Fatalf("hourly stats of the last day: %+v", hours)
	}
	badRequests(t, f.http.URL, "/v1/stats/hourly?since=noon", "/v1/stats/rules?limit=0",
		"/v1/stats/hourly?since="+since+"&until="+since, "/v1/stats/rules?store=s1", "/v1/stats/hourly?top=0")
}

// badRequests checks that each GET path is refused with 400.
func badRequests(t *testing.T, base string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
}

// TestAlertListFilters: /v1/alerts by rule and outcome, newest first, and
// paged on with the (until, before) cursor.
func TestAlertListFilters(t *testing.T) {
	f := start(t)
	c, acks := register(t, f.auth, f.b.URL(), "s1", "r1")
	for i := uint64(1); i <= 4; i++ {
		out := policy.Review
		if i%2 == 0 {
			out = policy.Deny
		}
		publish(t, c, wire.AlertsTopic("s1", "r1"), cartonAlert("s1", "r1", i, out))
	}
	collectAcks(t, acks, 4)
	var page []alertView
	getJSON(t, f.http.URL+"/v1/alerts?order=desc&limit=2&outcome=deny&rule=carton-cap", &page)
	if len(page) != 2 || page[0].Seq != 4 || page[1].Seq != 2 {
		t.Fatalf("newest denies: %+v", page)
	}
	last := page[1]
	getJSON(t, f.http.URL+"/v1/alerts?order=desc&limit=2&until="+url.QueryEscape(last.At.Format(time.RFC3339Nano))+"&before="+url.QueryEscape(last.ID), &page)
	if len(page) != 1 || page[0].Seq != 1 {
		t.Fatalf("next page: %+v", page)
	}
	badRequests(t, f.http.URL, "/v1/alerts?order=sideways", "/v1/alerts?before=x", "/v1/alerts?outcome=maybe")
}

package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/httpserve/httpservetest"
	"github.com/posguard/posguard/policy"
)

func (r *running) outboxDepth(t testing.TB) int {
	t.Helper()
	var ob agent.OutboxInfo
	r.do(t, "GET", "/v1/outbox", nil, &ob)
	return ob.Depth
}

// A web page open on the register cannot use the API: its simple POSTs
// (text/plain, forms) are refused before a decision, its cross-origin
// requests are refused, and rebinding its own name to 127.0.0.1 does not
// let it read the events.
func TestAPIRefusesWebPages(t *testing.T) {
	f := newFixture(t)
	doc := strings.Replace(f.yaml(""), "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  allowedHosts: [register-1.store.example]\n", 1)
	cfg, err := config.Load(f.write("agent.yaml", []byte(doc)))
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg, agent.Options{})
	body, _ := json.Marshal(agent.DecideRequest{Lines: []agent.CartLine{line(pack, 1)}, Token: f.mint("web-page", nil)})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.url, "http://"))
	tests := []struct {
		name, method, path string
		hdr                http.Header
		want               int
		msg                string
	}{
		{"text/plain decide", "POST", "/v1/decide", http.Header{"Content-Type": {"text/plain"}}, 415, "send application/json"},
		{"form decide", "POST", "/v1/decide", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 415, "send application/json"},
		{"text/plain resolve", "POST", "/v1/reviews/x", http.Header{"Content-Type": {"text/plain"}}, 415, "send application/json"},
		{"foreign origin decide", "POST", "/v1/decide", http.Header{"Origin": {"http://evil.example"}}, 403, "cross-origin"},
		{"foreign origin events", "GET", "/v1/events", http.Header{"Origin": {"http://evil.example"}}, 403, "cross-origin"},
		{"rebound host events", "GET", "/v1/events", http.Header{"Host": {"evil.example:" + port}}, 421, "http.allowedHosts"},
		{"rebound host decide", "POST", "/v1/decide", http.Header{"Host": {"evil.example:" + port}}, 421, "not a name of this server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := r.send(t, tc.method, tc.path, body, tc.hdr)
			if code != tc.want || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("%d %s, want %d with %q", code, b, tc.want, tc.msg)
			}
		})
	}
	if d := r.outboxDepth(t); d != 0 {
		t.Fatalf("refused requests left %d outbox events", d)
	}
	// The register's own names and its own origin still work.
	for _, host := range []string{"localhost:" + port, "register-1.store.example:" + port, "127.0.0.1:" + port} {
		if code, _, b := r.send(t, "GET", "/v1/events", nil, http.Header{"Host": {host}}); code != 200 {
			t.Errorf("Host %s: %d %s", host, code, b)
		}
	}
	if code, _, b := r.send(t, "POST", "/v1/decide", body, http.Header{"Origin": {r.url}, "Content-Type": {"application/json; charset=utf-8"}}); code != 200 {
		t.Fatalf("same-origin decide: %d %s", code, b)
	}
}

// Clients that send a decide's headers and then trickle its body are cut
// off after the read timeout and never decided; no more than MaxConns of
// them are held at once, and the API still answers afterwards.
func TestSlowClientsCannotHoldTheAPI(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{HTTPLimits: httpserve.Limits{Read: 300 * time.Millisecond, ReadHeader: 300 * time.Millisecond, MaxConns: 8}})
	tok := f.mint("slow-body", nil)
	httpservetest.SlowBodies(t, strings.TrimPrefix(r.url, "http://"), "/v1/decide", fmt.Sprintf(`{"lines":[],"token":%q}`, tok), 50, 30*time.Second)
	if d := r.outboxDepth(t); d != 0 {
		t.Fatalf("slow clients left %d decisions", d)
	}
	if res, code := r.decide(t, tok, line(onigiri, 1)); code != 200 || res.Outcome != policy.Allow {
		t.Fatalf("decide after the slow clients: %d %s (the token must still be unused)", code, res.Outcome)
	}
}

// A decide whose caller has gone away before the commit decides nothing:
// no event, and the token stays unused for the sale that does complete.
func TestDecideAbandonedStoresNothing(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	tok := f.mint("abandoned", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := r.Decide(ctx, agent.Sale{Lines: []agent.CartLine{line(onigiri, 1)}, Token: []byte(tok)})
	if !errors.Is(err, agent.ErrAbandoned) || res.Outcome != policy.Deny || res.EventID != "" {
		t.Fatalf("abandoned decide: %+v, %v; want deny, no event, ErrAbandoned", res, err)
	}
	if d := r.outboxDepth(t); d != 0 {
		t.Fatalf("abandoned decide left %d events", d)
	}
	if res, code := r.decide(t, tok, line(onigiri, 1)); code != 200 || res.Outcome != policy.Allow {
		t.Fatalf("the token after an abandoned decide: %d %s %v", code, res.Outcome, res.Decision.Rules)
	}
}

// oversized is a PG1-looking token past token.MaxTextLen.
var oversized = "PG1:" + strings.Repeat("6BFOXN", 200)

// checkTooLong checks ev is the refused attempt of an oversized token,
// stored without the token.
func checkTooLong(t *testing.T, ev event.Event) {
	t.Helper()
	if ev.Decision == nil || ev.Decision.Outcome != policy.Deny || ev.Request.Payment.Invalid != "too_long" {
		t.Fatalf("oversized token event: %+v %+v", ev.Decision, ev.Request.Payment)
	}
	b, _ := json.Marshal(ev)
	if strings.Contains(string(b), "6BFOXN6BFOXN") {
		t.Fatalf("event holds the oversized token: %d bytes", len(b))
	}
}

// A token over 1 KiB is probing: it gets a deny decision with reason
// too_long that goes to HQ like any refused token, instead of a 400 HQ
// never sees. It is denied even where invalid tokens are held for review,
// so the oversized text is never stored.
func TestOversizedTokenRecorded(t *testing.T) {
	for _, invalid := range []string{"deny", "review"} {
		t.Run(invalid, func(t *testing.T) {
			f := newFixture(t)
			p := f.path("policy.yaml")
			doc := strings.Replace(string(readFile(t, p)), "invalidToken: deny", "invalidToken: "+invalid, 1)
			if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			r := start(t, f.config(""), agent.Options{})
			res, code := r.decide(t, oversized, line(onigiri, 1))
			if code != 200 || res.Outcome != policy.Deny || res.ReviewID != "" || res.EventID == "" {
				t.Fatalf("oversized token: %d %+v", code, res)
			}
			if !strings.Contains(res.Decision.Rules[0].Reason, "too_long") || res.Decision.Rules[0].Action != "deny" {
				t.Fatalf("rules %+v", res.Decision.Rules)
			}
			if d := r.outboxDepth(t); d != 2 { // the decision and its alert
				t.Fatalf("outbox depth %d, want 2", d)
			}
			var evs []event.Event
			r.do(t, "GET", "/v1/events", nil, &evs)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			checkTooLong(t, evs[0])
			var open []agent.ReviewInfo
			if r.do(t, "GET", "/v1/reviews", nil, &open); len(open) != 0 {
				t.Fatalf("oversized token held for review: %+v", open)
			}
		})
	}
}

// The same from the scanner: an oversized QR beeps deny, is not forwarded
// and is recorded.
func TestOversizedTokenFromScanner(t *testing.T) {
	r := newPTYRig(t, "")
	r.scan(scan.QR, oversized)
	r.feedback(fbDeny)
	r.posQuiet()
	checkTooLong(t, r.lastEvent())
}

package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/policy"
)

func TestReviewResolveHTTP(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	held := func(acct string) agent.Result {
		t.Helper()
		res, _ := r.decide(t, f.mint(acct, nil), line(carton, 2))
		if res.Outcome != policy.Review || res.ReviewID == "" {
			t.Fatalf("not held: %+v", res)
		}
		return res
	}
	a, b := held("rv-a"), held("rv-b")
	var open []agent.ReviewInfo
	r.do(t, "GET", "/v1/reviews", nil, &open)
	if len(open) != 2 {
		t.Fatalf("open reviews %+v", open)
	}

	tests := []struct {
		name, id, action, pin string
		code                  int
		want                  string
	}{
		{"wrong pin", a.ReviewID, "approve", "0000", http.StatusForbidden, "wrong manager PIN"},
		{"bad action", a.ReviewID, "maybe", testPIN, http.StatusBadRequest, "approve or reject"},
		{"no such review", "nope", "approve", testPIN, http.StatusNotFound, "no review"},
		{"approve", a.ReviewID, "approve", testPIN, http.StatusOK, `"action":"approve"`},
		{"approve again is a no-op", a.ReviewID, "approve", testPIN, http.StatusOK, `"action":"approve"`},
		{"reject after approve", a.ReviewID, "reject", testPIN, http.StatusConflict, "already resolved"},
		{"reject", b.ReviewID, "reject", testPIN, http.StatusOK, `"action":"reject"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := r.resolve(t, tc.id, tc.action, tc.pin)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s; want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
	var e struct{ Error string }
	if code := r.do(t, "POST", "/v1/reviews/"+a.ReviewID, []byte(`{"action":"approve","pin":"4711","by":"x\u0007"}`), &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "control character") {
		t.Fatalf("control character in by: %d %+v", code, e)
	}
	r.do(t, "GET", "/v1/reviews", nil, &open)
	if len(open) != 0 {
		t.Fatalf("open reviews after resolving: %+v", open)
	}
	var one agent.ReviewInfo
	r.do(t, "GET", "/v1/reviews/"+a.ReviewID, nil, &one)
	if one.Resolution == nil || one.Resolution.By != "manager-tanaka" {
		t.Fatalf("review %+v", one)
	}
	// Two decisions, two alerts, two resolutions.
	var ob agent.OutboxInfo
	if r.do(t, "GET", "/v1/outbox", nil, &ob); ob.Depth != 6 {
		t.Fatalf("outbox depth %d, want 6", ob.Depth)
	}
}

func TestPINRateLimit(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	res, _ := r.decide(t, f.mint("rl", nil), line(carton, 2))
	for i := range 5 {
		if code, body := r.resolve(t, res.ReviewID, "approve", "9999"); code != http.StatusForbidden {
			t.Fatalf("wrong PIN %d: %d %s", i, code, body)
		}
	}
	// Now even the right PIN waits.
	if code, body := r.resolve(t, res.ReviewID, "approve", testPIN); code != http.StatusTooManyRequests {
		t.Fatalf("6th try: %d %s", code, body)
	}
	var one agent.ReviewInfo
	if r.do(t, "GET", "/v1/reviews/"+res.ReviewID, nil, &one); one.Resolution != nil {
		t.Fatalf("rate-limited approval applied: %+v", one)
	}
}

func TestReviewTimeout(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config("review: {timeout: 150ms}\n"), agent.Options{})
	res, _ := r.decide(t, f.mint("to", nil), line(carton, 2))
	if res.Outcome != policy.Review || res.Deadline.IsZero() {
		t.Fatalf("not held: %+v", res)
	}
	var one agent.ReviewInfo
	waitFor(t, "the review to time out", func() bool {
		r.do(t, "GET", "/v1/reviews/"+res.ReviewID, nil, &one)
		return one.Resolution != nil
	})
	if one.Resolution.Action != "timeout" || one.Resolution.By != "agent" {
		t.Fatalf("resolution %+v", one.Resolution)
	}
	if code, _ := r.resolve(t, res.ReviewID, "approve", testPIN); code != http.StatusConflict {
		t.Fatalf("approve after timeout: %d", code)
	}
}

// Held reviews survive a restart and still time out or resolve.
func TestReviewSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	cfg := f.config("")
	r := start(t, cfg, agent.Options{})
	res, _ := r.decide(t, f.mint("rs", nil), line(carton, 2))
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, cfg, agent.Options{})
	var open []agent.ReviewInfo
	if r2.do(t, "GET", "/v1/reviews", nil, &open); len(open) != 1 || open[0].ID != res.ReviewID {
		t.Fatalf("open reviews after restart: %+v", open)
	}
	if code, body := r2.resolve(t, res.ReviewID, "approve", testPIN); code != http.StatusOK {
		t.Fatalf("approve after restart: %d %s", code, body)
	}
}

// SIGHUP's Reload changes the manager PINs live.
func TestReloadPINs(t *testing.T) {
	f := newFixture(t)
	cfg := f.config("")
	r := start(t, cfg, agent.Options{})
	res, _ := r.decide(t, f.mint("rl-pin", nil), line(carton, 2))
	next := f.config("")
	next.ManagerPINs = nil
	r.Reload(next)
	if code, body := r.resolve(t, res.ReviewID, "approve", testPIN); code != http.StatusForbidden || !strings.Contains(body, "no manager PINs") {
		t.Fatalf("after removing PINs: %d %s", code, body)
	}
	r.Reload(f.config(""))
	if code, body := r.resolve(t, res.ReviewID, "approve", testPIN); code != http.StatusOK {
		t.Fatalf("after restoring PINs: %d %s", code, body)
	}
}

// TestNamedManagerPIN: a managerPINs entry "NAME:HASH" makes the resolution
// say whose PIN confirmed it, beside where it came from.
func TestNamedManagerPIN(t *testing.T) {
	f := newFixture(t)
	cfg := f.config("")
	cfg.ManagerPINs = []string{"sato:" + f.pinH}
	r := start(t, cfg, agent.Options{})
	res, _ := r.decide(t, f.mint("named-pin", nil), line(carton, 2))
	if res.Outcome != policy.Review {
		t.Fatalf("not held: %+v", res)
	}
	if code, body := r.resolve(t, res.ReviewID, "reject", "0000"); code != http.StatusForbidden {
		t.Fatalf("wrong PIN: %d %s", code, body)
	}
	if code, body := r.resolve(t, res.ReviewID, "reject", testPIN); code != http.StatusOK {
		t.Fatalf("named PIN: %d %s", code, body)
	}
	var one agent.ReviewInfo
	r.do(t, "GET", "/v1/reviews/"+res.ReviewID, nil, &one)
	if one.Resolution == nil || one.Resolution.By != "sato at manager-tanaka" {
		t.Fatalf("resolution %+v, want by %q", one.Resolution, "sato at manager-tanaka")
	}
}

package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/token"
)

// The 7pay patterns through POST /v1/decide, in order against one state
// file: each sale's history is what the next one sees.
func TestDecideHTTP(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	first := f.mint("acct-a", nil)
	fresh := func(c *claims) { c.TopUpAt, c.TopUpAmount = time.Now().Add(-10*time.Minute), 90000 }
	tests := []struct {
		name    string
		token   string
		lines   []agent.CartLine
		outcome policy.Outcome
		rules   []string
		invalid string
	}{
		{"onigiri and coffee", first, []agent.CartLine{line(onigiri, 2), line(coffee, 1)}, policy.Allow, nil, ""},
		{"replayed token", first, []agent.CartLine{line(onigiri, 1)}, policy.Deny, []string{"token"}, "replayed"},
		{"fresh top-up, 2 cartons", f.mint("acct-b", fresh), []agent.CartLine{line(carton, 2)}, policy.Review,
			[]string{"sale-over-10000", "fresh-topup"}, ""},
		{"3 cartons", f.mint("acct-c", nil), []agent.CartLine{line(carton, 3)}, policy.Deny,
			[]string{"sale-over-10000", "carton-cap"}, ""},
		{"unknown wallet", "HELLO-WORLD", []agent.CartLine{line(onigiri, 1)}, policy.Review, []string{"token"}, ""},
		{"tampered token", first[:len(first)-2] + "AA", nil, policy.Deny, []string{"token"}, ""},
		{"unknown item", f.mint("acct-d", nil), []agent.CartLine{line("4999999999996", 1)}, policy.Allow, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, code := r.decide(t, tc.token, tc.lines...)
			if code != http.StatusOK {
				t.Fatalf("status %d: %+v", code, res)
			}
			if res.Outcome != tc.outcome || res.Decision.Outcome != tc.outcome {
				t.Fatalf("outcome %s, want %s: %+v", res.Outcome, tc.outcome, res.Decision.Rules)
			}
			if tc.rules != nil && !slices.Equal(fired(res), tc.rules) {
				t.Fatalf("enforced rules %v, want %v", fired(res), tc.rules)
			}
			if tc.invalid != "" && !strings.Contains(res.Decision.Rules[0].Reason, tc.invalid) {
				t.Fatalf("reason %q does not say %s", res.Decision.Rules[0].Reason, tc.invalid)
			}
			if res.EventID == "" || res.SaleID == "" || res.Decision.Policy.Name != "chain-default" {
				t.Fatalf("result %+v", res)
			}
			if (res.Outcome == policy.Review) != (res.ReviewID != "") {
				t.Fatalf("review id %q for outcome %s", res.ReviewID, res.Outcome)
			}
		})
	}
	// Every decision is in the outbox with its alert where it is one.
	var ob agent.OutboxInfo
	r.do(t, "GET", "/v1/outbox", nil, &ob)
	var evs []event.Event
	r.do(t, "GET", "/v1/events?after=0", nil, &evs)
	if len(evs) != len(tests) {
		t.Fatalf("%d recent events, want %d", len(evs), len(tests))
	}
	alerts := 0
	for _, ev := range evs {
		if ev.Decision.Outcome != policy.Allow {
			alerts++
		}
	}
	if ob.Depth != len(tests)+alerts || ob.Oldest.IsZero() {
		t.Fatalf("outbox %+v, want %d events", ob, len(tests)+alerts)
	}
	r.do(t, "GET", fmt.Sprintf("/v1/events?after=%d", evs[2].Seq), nil, &evs)
	if len(evs) == 0 || evs[0].Seq <= 3 {
		t.Fatalf("events after seq: %+v", evs)
	}
}

// The Shinjuku pattern: the 4th and later accounts buying tobacco at one
// register within 30 minutes are denied (maxAccounts 3).
func TestEighthAccountDenied(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	for i := 1; i <= 8; i++ {
		res, code := r.decide(t, f.mint(fmt.Sprintf("shinjuku-%d", i), nil), line(pack, 1))
		want := policy.Allow
		if i > 3 {
			want = policy.Deny
		}
		if code != http.StatusOK || res.Outcome != want {
			t.Fatalf("account %d: %d %s, want %s (%v)", i, code, res.Outcome, want, res.Decision.Rules)
		}
		if i > 3 && !slices.Contains(fired(res), "register-accounts") {
			t.Fatalf("account %d denied by %v", i, fired(res))
		}
	}
}

func TestDecideBadRequests(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	tests := []struct{ name, body, want string }{
		{"not json", "{", "body:"},
		{"unknown field", `{"token":"x","tip":1}`, "unknown field"},
		{"no token", `{"lines":[]}`, "token: required"},
		{"zero quantity", `{"token":"x","lines":[{"jan":"4901234200012","quantity":0}]}`, "lines[0].quantity"},
		{"empty jan", `{"token":"x","lines":[{"jan":"","quantity":1}]}`, "lines[0].jan"},
		{"trailing", `{"token":"x"} {}`, "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error string }
			if code := r.do(t, "POST", "/v1/decide", []byte(tc.body), &e); code != http.StatusBadRequest {
				t.Fatalf("status %d", code)
			}
			if !strings.Contains(e.Error, tc.want) {
				t.Fatalf("error %q does not contain %q", e.Error, tc.want)
			}
		})
	}
	var ob agent.OutboxInfo
	if r.do(t, "GET", "/v1/outbox", nil, &ob); ob.Depth != 0 {
		t.Fatalf("bad requests left %d outbox events", ob.Depth)
	}
}

// Concurrent decisions of one token: exactly one is allowed, and every one
// has its event.
func TestConcurrentSameToken(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	tok := f.mint("acct-race", nil)
	const n = 8
	results := make(chan agent.Result, n)
	for range n {
		go func() {
			res, _ := r.decide(t, tok, line(onigiri, 1))
			results <- res
		}()
	}
	allowed := 0
	for range n {
		if res := <-results; res.Outcome == policy.Allow {
			allowed++
		} else if res.EventID == "" {
			t.Errorf("refused decision without event: %+v", res)
		}
	}
	if allowed != 1 {
		t.Fatalf("%d of %d concurrent uses of one token allowed", allowed, n)
	}
}

// With no valid policy failMode decides: an expired policy's own failMode,
// or the default when there is none at all.
func TestFailMode(t *testing.T) {
	t.Run("expired policy", func(t *testing.T) {
		f := newFixture(t)
		f.policy("policy.yaml", "2026-02-01T00:00:00Z")
		r := start(t, f.config(""), agent.Options{})
		res, _ := r.decide(t, f.mint("fm-1", nil), line(pack, 1))
		if res.Outcome != policy.Review || !res.Decision.FailMode || !slices.Contains(fired(res), "failmode:category") {
			t.Fatalf("tobacco under an expired policy: %+v", res)
		}
		res, _ = r.decide(t, f.mint("fm-2", nil), line(onigiri, 1))
		if res.Outcome != policy.Allow || !res.Decision.FailMode {
			t.Fatalf("onigiri under an expired policy: %+v", res)
		}
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		if !st.FailMode || st.Policy == nil || !st.Policy.Expired {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("bootstrap unreadable", func(t *testing.T) {
		f := newFixture(t)
		f.write("policy.yaml", []byte("apiVersion: nonsense\n"))
		r := start(t, f.config(""), agent.Options{})
		// No policy: no issuer is known, so a PG1 token cannot be
		// verified and the default failMode denies it.
		res, _ := r.decide(t, f.mint("fm-3", nil), line(onigiri, 1))
		if res.Outcome != policy.Deny || !res.Decision.FailMode {
			t.Fatalf("PG1 without policy: %+v", res)
		}
		emv, err := token.MintEMV(token.EMVSample{PAN: "5413330089020011", ATC: 7})
		if err != nil {
			t.Fatal(err)
		}
		// Without any catalog the agent cannot know a tobacco pack: it is
		// "unknown", which the default failMode allows.
		res, _ = r.decide(t, emv, line(pack, 1))
		if res.Outcome != policy.Allow || !res.Decision.FailMode || res.Decision.Policy.Name != "" {
			t.Fatalf("EMV without policy: %+v", res)
		}
		res, _ = r.decide(t, emv, line(onigiri, 1))
		if res.Outcome != policy.Deny || !strings.Contains(res.Decision.Rules[0].Reason, "atc_replayed") {
			t.Fatalf("EMV ATC replay: %+v", res)
		}
	})
}

// Offline (no HQ contact for hq.offlineAfter) applies the offline limits:
// when the broker cannot be reached, and when the broker is up but HQ does
// not acknowledge events.
func TestOffline(t *testing.T) {
	t.Run("broker unreachable", func(t *testing.T) {
		f := newFixture(t)
		r := start(t, f.config("hq:\n  broker: tcp://127.0.0.1:1\n  offlineAfter: 1ms\n"), agent.Options{})
		time.Sleep(5 * time.Millisecond)
		res, _ := r.decide(t, f.mint("off-1", nil), line(carton, 2))
		if !res.Decision.Offline || !slices.Contains(fired(res), "offline:tobacco-carton") {
			t.Fatalf("offline decision %+v", res)
		}
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		if !st.HQ.Configured || st.HQ.Connected || !st.HQ.Offline {
			t.Fatalf("status %+v", st.HQ)
		}
	})
	t.Run("HQ silent behind a live broker", func(t *testing.T) {
		b, auth := embedtest.Start(t, "S001/R1")
		hqYAML := "hq:\n  broker: " + b.URL() + "\n  passwordFile: " + auth.PasswordFile("S001/R1") + "\n"
		f := newFixture(t)
		r := start(t, f.config(hqYAML+"  offlineAfter: 100ms\n"), agent.Options{})
		waitFor(t, "the broker connection", func() bool {
			var st agent.Status
			r.do(t, "GET", "/v1/status", nil, &st)
			return st.HQ.Connected
		})
		time.Sleep(150 * time.Millisecond)
		// Connected, nothing waiting for HQ: online however quiet.
		if res, _ := r.decide(t, f.mint("off-2", nil), line(onigiri, 1)); res.Decision.Offline {
			t.Fatalf("connected and quiet, decided offline: %+v", res.Decision)
		}
		// That sale's event waits for an ack that never comes.
		time.Sleep(150 * time.Millisecond)
		if res, _ := r.decide(t, f.mint("off-3", nil), line(onigiri, 1)); !res.Decision.Offline {
			t.Fatalf("events unacknowledged for longer than offlineAfter, decided online: %+v", res.Decision)
		}
	})
}

// Without hq the register is standalone and never offline.
func TestStandaloneNotOffline(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	res, _ := r.decide(t, f.mint("sa-1", nil), line(carton, 2))
	if res.Decision.Offline {
		t.Fatalf("standalone decision offline: %+v", res)
	}
}

func TestStatusMetricsHealth(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{Version: "v9.9.9"})
	r.decide(t, f.mint("m-1", nil), line(onigiri, 1))
	r.decide(t, f.mint("m-2", nil), line(carton, 3))
	if code := r.do(t, "GET", "/healthz", nil, nil); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	var st agent.Status
	r.do(t, "GET", "/v1/status", nil, &st)
	if st.Policy == nil || st.Policy.Name != "chain-default" || st.Policy.Source != agent.SourceBootstrap || st.FailMode ||
		st.Version != "v9.9.9" || st.Links.Scanner != "none" || st.Links.POS != "none" || st.Outbox.Depth != 3 ||
		st.Last == nil || st.Last.Outcome != "deny" || st.HQ.Configured {
		b, _ := json.Marshal(st)
		t.Fatalf("status %s", b)
	}
	resp, err := r.client.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	if _, err := io.Copy(buf, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`posguard_agent_decisions_total{outcome="allow"} 1`,
		`posguard_agent_decisions_total{outcome="deny"} 1`,
		`posguard_agent_rules_fired_total{mode="enforce",rule="carton-cap"} 1`,
		`posguard_agent_outbox_depth 3`,
		`posguard_agent_policy_version 1`,
		`posguard_agent_decision_seconds_count 2`,
		`posguard_agent_commit_errors_total 0`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A state file that cannot be used stops the agent with a clear error and
// leaves the file as it was: the outbox may hold events HQ has not seen.
func TestStateFileProblems(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
		text    string
	}{
		{"corrupt", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, state.ErrCorrupt, "state file corrupt"},
		{"previous schema", func(t *testing.T, path string) { writeSchema(t, path, 0) }, state.ErrSchema, "cannot be migrated"},
		{"newer schema", func(t *testing.T, path string) { writeSchema(t, path, 99) }, state.ErrSchema, "upgrade posguard"},
		{"other register", func(t *testing.T, path string) {
			st, err := state.Open(path, state.Options{Store: "S001", Register: "R9"})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		}, state.ErrWrongRegister, "S001/R9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config("")
			tc.prepare(t, cfg.State)
			before := readFile(t, cfg.State)
			a, err := agent.New(cfg, agent.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = a.Run(t.Context())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), cfg.State) {
				t.Fatalf("Run: %v; want %v mentioning %q and the path", err, tc.want, tc.text)
			}
			if after := readFile(t, cfg.State); string(after) != string(before) {
				t.Fatal("the agent changed a state file it refused")
			}
		})
	}
}

// A full disk: the decision cannot be stored, so the payment is refused
// (503, outcome deny) and nothing is allowed; the agent keeps running and
// the commit errors are counted.
func TestFullDisk(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{StateMaxSize: 64 << 10})
	var failed agent.Result
	for i := 0; i < 500; i++ {
		res, code := r.decide(t, f.mint(fmt.Sprintf("full-%d", i), nil), line(onigiri, 1), line(coffee, 1),
			line(strings.Repeat("4", 40), 1))
		if code == http.StatusServiceUnavailable {
			failed = res
			break
		}
		if code != http.StatusOK || res.Outcome != policy.Allow {
			t.Fatalf("sale %d: %d %+v", i, code, res)
		}
	}
	if failed.SaleID == "" {
		t.Fatal("the state file never filled up")
	}
	if failed.Outcome != policy.Deny || !strings.Contains(failed.Error, "could not be stored") || failed.EventID != "" {
		t.Fatalf("failed commit answered %+v", failed)
	}
	res, code := r.decide(t, f.mint("full-after", nil), line(onigiri, 1))
	if code != http.StatusServiceUnavailable || res.Outcome != policy.Deny {
		t.Fatalf("after the disk filled: %d %+v", code, res)
	}
	if code := r.do(t, "GET", "/healthz", nil, nil); code != http.StatusOK {
		t.Fatalf("agent not serving after a failed commit: %d", code)
	}
}

// TestDecideMessage: the answer to the POS carries the fired rules'
// reasons in the configured language, Japanese unless told otherwise.
func TestDecideMessage(t *testing.T) {
	for _, tc := range []struct {
		extra, want string
	}{
		{"", "会計 18,000円 > 上限 10,000円\nタバコ(カートン) 3点 > 上限 2点"},
		{"messages: {language: en}\n", "sale ¥18,000 > limit ¥10,000\ntobacco cartons 3 > limit 2"},
	} {
		f := newFixture(t)
		r := start(t, f.config(tc.extra), agent.Options{})
		res, code := r.decide(t, f.mint("acct-c", nil), line(carton, 3))
		if code != http.StatusOK || res.Message != tc.want {
			t.Errorf("config %q: status %d, message %q, want %q", tc.extra, code, res.Message, tc.want)
		}
		res, _ = r.decide(t, f.mint("acct-d", nil), line(onigiri, 1))
		if res.Message != "" {
			t.Errorf("quiet sale has message %q", res.Message)
		}
	}
}

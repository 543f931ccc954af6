package agent_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/policy"
)

// post sends a decide body with an Idempotency-Key and returns the answer,
// its status and whether it says it was replayed.
func (r *running) post(t testing.TB, key string, body []byte) (agent.Result, int, bool, string) {
	t.Helper()
	code, hdr, raw := r.send(t, "POST", "/v1/decide", body, http.Header{"Idempotency-Key": {key}})
	var res agent.Result
	if code == http.StatusOK || code == http.StatusServiceUnavailable {
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return res, code, hdr.Get("Idempotent-Replayed") == "true", string(raw)
}

func decideBody(t testing.TB, tok string, lines ...agent.CartLine) []byte {
	t.Helper()
	b, err := json.Marshal(agent.DecideRequest{Lines: lines, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecideIdempotencyKey: a POS that lost the answer and retries with
// the same key gets the first answer, also after an agent restart; the
// sale is decided and stored once. Without a key the retry is a replay.
func TestDecideIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	cfg := f.config("")
	r := start(t, cfg, agent.Options{})

	tok := f.mint("acct-retry", nil)
	body := decideBody(t, tok, line(carton, 3))
	first, code, replayed, _ := r.post(t, "pos-R1-000123", body)
	if code != http.StatusOK || replayed || first.Outcome != policy.Deny || first.EventID == "" {
		t.Fatalf("first answer %d %+v (replayed %v)", code, first, replayed)
	}
	// The same request, reformatted: still the same request.
	var generic map[string]any
	json.Unmarshal(body, &generic)
	reformatted, _ := json.MarshalIndent(generic, "", "  ")
	again, code, replayed, _ := r.post(t, "pos-R1-000123", reformatted)
	if code != http.StatusOK || !replayed {
		t.Fatalf("retry: %d replayed=%v", code, replayed)
	}
	if again.SaleID != first.SaleID || again.EventID != first.EventID || again.Outcome != first.Outcome ||
		len(again.Decision.Rules) != len(first.Decision.Rules) {
		t.Errorf("retry answered %+v, first was %+v", again, first)
	}

	// Another cart under the same key is a caller's bug: refused, not decided.
	_, code, _, msg := r.post(t, "pos-R1-000123", decideBody(t, tok, line(onigiri, 1)))
	if code != http.StatusUnprocessableEntity || !strings.Contains(msg, "different request") {
		t.Errorf("key reused for another cart: %d %s", code, msg)
	}

	// Without a key, the same token again is what it is: a replay.
	plain, code := r.decide(t, tok, line(carton, 3))
	if code != http.StatusOK || plain.Outcome != policy.Deny || !strings.Contains(plain.Decision.Rules[0].Reason, "replayed") {
		t.Errorf("retry without a key: %d %+v", code, plain)
	}

	// Decided twice in all: the keyed sale once, the keyless replay once.
	var evs []struct {
		SaleID string `json:"saleId"`
	}
	r.do(t, "GET", "/v1/events?after=0", nil, &evs)
	if len(evs) != 2 || evs[0].SaleID != first.SaleID || evs[1].SaleID != plain.SaleID {
		t.Errorf("decisions made: %+v, want %s then %s", evs, first.SaleID, plain.SaleID)
	}

	// The key is in the state file: a restarted agent answers it too,
	// without deciding anything.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, cfg, agent.Options{})
	after, code, replayed, _ := r2.post(t, "pos-R1-000123", body)
	if code != http.StatusOK || !replayed || after.SaleID != first.SaleID || after.EventID != first.EventID {
		t.Errorf("after restart: %d replayed=%v %+v", code, replayed, after)
	}
	evs = nil
	r2.do(t, "GET", "/v1/events?after=0", nil, &evs)
	if len(evs) != 0 {
		t.Errorf("the restarted agent decided %+v", evs)
	}
	_, _, metrics := r2.send(t, "GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics), "posguard_agent_idempotent_replays_total 1\n") {
		t.Errorf("replay metric of the restarted agent:\n%s", grepLines(string(metrics), "idempotent"))
	}
}

// TestDecideIdempotencyKeyConcurrent: retries that overtake the first
// request (a POS with a short timeout) all get one answer.
func TestDecideIdempotencyKeyConcurrent(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	body := decideBody(t, f.mint("acct-race", nil), line(onigiri, 2), line(coffee, 1))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sales = map[string]int{}
	)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, code, _, msg := r.post(t, "race-key", body)
			mu.Lock()
			defer mu.Unlock()
			if code != http.StatusOK || res.Outcome != policy.Allow {
				t.Errorf("answer %d %s", code, msg)
				return
			}
			sales[res.SaleID+" "+res.EventID]++
		}()
	}
	wg.Wait()
	if len(sales) != 1 {
		t.Errorf("concurrent retries got %d different answers: %v", len(sales), sales)
	}
}

func TestDecideIdempotencyKeyRefused(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	body := decideBody(t, f.mint("acct-bad-key", nil), line(onigiri, 1))
	for name, key := range map[string]string{
		"tab":       "abc\tdef",
		"space":     "abc def",
		"too long":  strings.Repeat("k", 256),
		"non-ASCII": "レジ1",
	} {
		t.Run(name, func(t *testing.T) {
			_, code, _, msg := r.post(t, key, body)
			if code != http.StatusBadRequest || !strings.Contains(msg, "Idempotency-Key") {
				t.Errorf("%d %s", code, msg)
			}
		})
	}
	// Refused keys decided nothing: the token is still fresh.
	if res, code := r.decide(t, f.mint("acct-bad-key", nil), line(onigiri, 1)); code != http.StatusOK || res.Outcome != policy.Allow {
		t.Errorf("after refused keys: %d %+v", code, res)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

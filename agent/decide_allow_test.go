package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/posguard/posguard/agent"
)

// TestAllowAnswerListsNoRules: an allowed sale answers "rules":[] (a
// client iterating the list must not meet null), first time, on an
// idempotent retry (the stored answer decoded and encoded again) and in
// its decision event.
func TestAllowAnswerListsNoRules(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	body := decideBody(t, f.mint("acct-quiet", nil), line(onigiri, 1))
	for _, try := range []string{"first", "retry"} {
		code, _, raw := r.send(t, "POST", "/v1/decide", body, http.Header{"Idempotency-Key": {"pos-R1-quiet"}})
		if code != http.StatusOK || !strings.Contains(string(raw), `"outcome":"allow"`) {
			t.Fatalf("%s: %d %s, want an allow", try, code, raw)
		}
		if !strings.Contains(string(raw), `"rules":[]`) {
			t.Errorf("%s answer %s, want \"rules\":[]", try, raw)
		}
	}
	code, _, raw := r.send(t, "GET", "/v1/events?after=0", nil, nil)
	if code != http.StatusOK || strings.Count(string(raw), `"rules":[]`) != 1 || strings.Contains(string(raw), `"rules":null`) {
		t.Errorf("events %d %s, want one decision with \"rules\":[]", code, raw)
	}
}

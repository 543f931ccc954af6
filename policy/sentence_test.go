package policy

import (
	"math"
	"slices"
	"testing"
	"time"
)

// appendSeconds must write what the reasons wrote before it existed,
// d.Truncate(time.Second).String(), for every whole-second span a reason
// can carry: the sentences are in goldens and in HQ's stored events.
func TestAppendSecondsIsDurationString(t *testing.T) {
	var spans []time.Duration
	for s := int64(0); s < 200_000; s += 7 {
		spans = append(spans, time.Duration(s)*time.Second)
	}
	spans = append(spans, time.Hour, 24*time.Hour, 59*time.Second, 61*time.Minute, 1500*time.Millisecond,
		999*time.Millisecond, -90*time.Second, -time.Second-time.Millisecond, 3*365*24*time.Hour,
		time.Duration(math.MaxInt64), time.Duration(math.MinInt64+1))
	for _, d := range spans {
		want := d.Truncate(time.Second).String()
		if got := string(appendSeconds([]byte("x"), d)); got != "x"+want {
			t.Fatalf("appendSeconds(%d) = %q, want %q", d, got[1:], want)
		}
	}
}

// TestEvaluateFiringAllocations: a sale where rules fire allocates the
// decision's own storage and nothing per rule: its rules, their reasons,
// their sentences (one string) and its category names, one allocation
// each, on every example policy and every incident request. The example's
// expr rule may add what CEL boxes (integers of 256 and up: the top-up
// amount, the products of its arithmetic), which is not the engine's.
func TestEvaluateFiringAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop entries")
	}
	policies := examplePolicies(t)
	h := shinjuku(t)
	for name, p := range policies {
		maxAllocs := 4.0
		if slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.Kind == KindExpr }) {
			maxAllocs += 6 // CEL's boxes
		}
		fired := 0
		for _, req := range []string{"topup-90400", "crew-first-account", "office-10-cartons", "register-8th", "tobacco-100000", "offline-cartons", "replayed"} {
			r := readRequest(t, req)
			d := Evaluate(p, r, h)
			if len(d.Rules) == 0 {
				continue
			}
			fired++
			if n := testing.AllocsPerRun(100, func() { Evaluate(p, r, h) }); n > maxAllocs {
				t.Errorf("%s, %s: %d rules fired with %v allocations, want at most %v", name, req, len(d.Rules), n, maxAllocs)
			}
		}
		if fired < 5 {
			t.Errorf("%s: only %d of the incident requests fired a rule", name, fired)
		}
	}
}

// examplePolicies are the two example policies as shipped and without
// their expr rule (whose CEL boxes allocate on their own).
func examplePolicies(t testing.TB) map[string]*Policy {
	withoutExpr := func(p *Policy) *Policy {
		p.Rules = slices.DeleteFunc(p.Rules, func(r Rule) bool { return r.Kind == KindExpr })
		return p
	}
	return map[string]*Policy{
		"example":               loadExample(t),
		"example without expr":  withoutExpr(loadExample(t)),
		"unscored":              loadExampleUnscored(t),
		"unscored without expr": withoutExpr(loadExampleUnscored(t)),
	}
}

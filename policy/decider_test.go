package policy

import (
	"reflect"
	"slices"
	"testing"
)

// TestDeciderDecidesAsEvaluate: a Decider reused from sale to sale decides
// every incident request, on every example policy, as Evaluate does but
// for the English sentences it leaves out; and a warm one decides a firing
// sale without allocating on the built-in kinds.
func TestDeciderDecidesAsEvaluate(t *testing.T) {
	policies := examplePolicies(t)
	reqs := []string{"topup-90400", "crew-first-account", "office-10-cartons", "register-8th", "tobacco-100000",
		"offline-cartons", "replayed", "regular-2-cartons", "onigiri-700"}
	h := shinjuku(t)
	var dc Decider
	for name, p := range policies {
		hasExpr := slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.Kind == KindExpr })
		for _, rn := range reqs {
			req := readRequest(t, rn)
			want := Evaluate(p, req, h)
			for i := range want.Rules {
				want.Rules[i].Reason = ""
			}
			got := dc.Evaluate(p, req, h)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: Decider decides\n%+v\nEvaluate\n%+v", name, rn, got, want)
			}
			if raceEnabled || hasExpr || len(want.Rules) == 0 {
				continue
			}
			if n := testing.AllocsPerRun(100, func() { dc.Evaluate(p, req, h) }); n != 0 {
				t.Errorf("%s, %s: %d rules fired with %v allocations, want 0", name, rn, len(want.Rules), n)
			}
		}
	}
}

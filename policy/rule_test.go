package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// ruleCase is one sale decided by a policy of testBase plus one rule, id r.
type ruleCase struct {
	name    string
	rule    string
	lines   []Line
	pay     Payment // zero: a valid pg1 token of account "acct"
	past    []PastSale
	deny    []string
	offline bool
	want    Outcome
	reason  string // reason rule r fires with; "" = it must not fire
}

// testRuleCases decides each case and checks the outcome, and that rule r
// fired with the reason, action and mode it should, or did not fire.
func testRuleCases(t *testing.T, tests []ruleCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(t, tt.rule)
			if tt.pay.Kind == "" {
				tt.pay = pay("acct")
			}
			h := NewMemoryHistory(tt.past, tt.deny)
			d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: tt.lines, Payment: tt.pay, Offline: tt.offline}, h)
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s (fired %+v)", d.Outcome, tt.want, d.Rules)
			}
			if d.Policy != (PolicyRef{Name: "t", Version: 7}) {
				t.Errorf("policy ref %+v", d.Policy)
			}
			f, fired := findFired(d, "r")
			switch {
			case tt.reason == "" && fired:
				t.Errorf("rule fired: %+v", f)
			case tt.reason != "" && !fired:
				t.Errorf("rule did not fire, want %q (fired %v)", tt.reason, d.Rules)
			case tt.reason != "" && f.Reason != tt.reason:
				t.Errorf("reason %q\nwant   %q", f.Reason, tt.reason)
			}
			if r := p.Rules[0]; fired && (f.Action != r.Action || f.Mode != r.Mode) {
				t.Errorf("fired as %s/%s, the rule says %s/%s", f.Action, f.Mode, r.Action, r.Mode)
			}
		})
	}
}

// lintCase is one rule added to testBase: it loads (no problems) or is
// refused with exactly these problems, in order.
type lintCase struct {
	name     string
	rule     string
	problems []string
}

func testRuleLint(t *testing.T, tests []lintCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(testBase + "  - " + tt.rule + "\n"))
			var got []string
			var ve *ValidationError
			switch {
			case errors.As(err, &ve):
				for _, p := range ve.Problems {
					got = append(got, p.String())
				}
			case err != nil:
				t.Fatalf("Load = %v, want a *ValidationError", err)
			}
			if !reflect.DeepEqual(got, tt.problems) {
				t.Errorf("problems\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.problems, "\n  "))
			}
		})
	}
}

// TestRuleKindTable: every registered kind judges sales, reads only fields
// Rule has and that are its own, and Load wires each rule to its kind.
func TestRuleKindTable(t *testing.T) {
	yamlNames := map[string]bool{}
	rt := reflect.TypeFor[Rule]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		yamlNames[name] = true
	}
	for name, k := range ruleKinds {
		if k.eval == nil {
			t.Errorf("kind %s has no evaluation", name)
		}
		for _, f := range k.fields {
			if !yamlNames[f] || commonRuleFields[f] {
				t.Errorf("kind %s reads %q, which is not a kind-specific field of Rule", name, f)
			}
		}
	}
	for name := range commonRuleFields {
		if !yamlNames[name] {
			t.Errorf("common field %q is not a field of Rule", name)
		}
	}
	for _, r := range loadExample(t).Rules {
		if got, want := reflect.ValueOf(r.eval).Pointer(), reflect.ValueOf(ruleKinds[r.Kind].eval).Pointer(); got != want {
			t.Errorf("rule %s (%s) evaluates with the wrong kind", r.ID, r.Kind)
		}
	}
}

// TestKindFieldsSet: the fields reported as set are exactly those in the
// document, in document order, and never the common ones.
func TestKindFieldsSet(t *testing.T) {
	n, a := 0, int64(0)
	r := Rule{ID: "x", Kind: KindCartLimit, Action: "deny", Mode: ModeShadow, Categories: []string{"c"}, Label: "l", Description: "d",
		MaxQuantity: &n, MaxAmount: &a, MinAge: Duration(1), Reason: "why"}
	if got, want := r.kindFieldsSet(), []string{"maxQuantity", "maxAmount", "minAge", "reason"}; !reflect.DeepEqual(got, want) {
		t.Errorf("kindFieldsSet = %v, want %v (a zero limit is set; a pointer says so)", got, want)
	}
	if got := (&Rule{ID: "x", Kind: KindDenylist}).kindFieldsSet(); got != nil {
		t.Errorf("nothing set, got %v", got)
	}
}

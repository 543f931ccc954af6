package policy

import "testing"

func TestUnlessAllowlisted(t *testing.T) {
	big := []Line{cartons(3)}
	for _, tc := range []struct {
		name        string
		rule        string
		allowlisted bool
		want        Outcome
		fires       bool
	}{
		{"not allowlisted fires", `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2, unless: allowlisted}`, false, Deny, true},
		{"allowlisted is excused", `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2, unless: allowlisted}`, true, Allow, false},
		{"allowlisted without unless still fires", `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2}`, true, Deny, true},
		{"shadow excused is not listed either", `{id: r, kind: cart_limit, action: deny, mode: shadow, categories: [tobacco-carton], maxQuantity: 2, unless: allowlisted}`, true, Allow, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(t, tc.rule)
			d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: big, Payment: pay("acct"), Allowlisted: tc.allowlisted}, nil)
			_, fired := findFired(d, "r")
			if d.Outcome != tc.want || fired != tc.fires {
				t.Fatalf("outcome %s fired %v (%+v), want %s fired %v", d.Outcome, fired, d.Rules, tc.want, tc.fires)
			}
		})
	}
}

// The allowlist excuses rules, not the token check: an allowlisted account
// paying with a refused token is still refused.
func TestUnlessKeepsTokenRule(t *testing.T) {
	p := testPolicy(t, `{id: r, kind: denylist, action: deny, unless: allowlisted}`)
	pm := pay("acct")
	pm.Invalid = "bad_signature"
	d := Evaluate(p, Request{Store: "S1", Register: "R1", At: t0, Lines: []Line{onigiri(1)}, Payment: pm, Allowlisted: true}, NewMemoryHistory(nil, []string{"acct"}))
	if _, fired := findFired(d, TokenRuleID); !fired || d.Outcome != Deny {
		t.Fatalf("decision %+v, want the token rule to deny", d)
	}
}

func TestUnlessLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "allowlisted", rule: `{id: r, kind: denylist, action: deny, unless: allowlisted}`},
		{name: "unknown fact", rule: `{id: r, kind: denylist, action: deny, unless: vip}`, problems: []string{
			`rules[0].unless: must be allowlisted, not "vip"`,
		}},
	})
}

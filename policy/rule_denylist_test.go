package policy

import "testing"

func TestDenylist(t *testing.T) {
	testRuleCases(t, []ruleCase{
		{name: "on the list", rule: `{id: r, kind: denylist, action: deny}`, lines: []Line{onigiri(1)}, pay: pay("bad"), deny: []string{"bad"}, want: Deny,
			reason: "account is on the HQ denylist"},
		{name: "not on the list", rule: `{id: r, kind: denylist, action: deny}`, lines: []Line{onigiri(1)}, pay: pay("good"), deny: []string{"bad"}, want: Allow},
		{name: "no account is never listed", rule: `{id: r, kind: denylist, action: deny}`, lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenOpaque}, deny: []string{""}, want: Allow},
		{name: "listed, not the category", rule: `{id: r, kind: denylist, action: deny, categories: [tobacco]}`, lines: []Line{onigiri(1)}, pay: pay("bad"), deny: []string{"bad"}, want: Allow},
		{name: "listed, the category", rule: `{id: r, kind: denylist, action: review, categories: [tobacco]}`, lines: []Line{packs(1)}, pay: pay("bad"), deny: []string{"bad"}, want: Review,
			reason: "account is on the HQ denylist"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: denylist, action: deny, mode: shadow}`, lines: []Line{onigiri(1)}, pay: pay("bad"), deny: []string{"bad"}, want: Allow,
			reason: "account is on the HQ denylist"},
	})
}

func TestDenylistLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: denylist, action: deny}`},
		{name: "a field of another kind", rule: `{id: r, kind: denylist, action: deny, reason: listed}`, problems: []string{
			"rules[0].reason: not used by kind denylist",
		}},
		{name: "bad action and mode", rule: `{id: r, kind: denylist, action: allow, mode: dry-run}`, problems: []string{
			`rules[0].action: must be review, deny or score, not "allow"`,
			`rules[0].mode: must be enforce or shadow, not "dry-run"`,
		}},
	})
}

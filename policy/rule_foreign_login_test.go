package policy

import "testing"

func TestForeignLogin(t *testing.T) {
	abroad := Payment{Kind: TokenPG1, Account: "a", ForeignLogin: true}
	testRuleCases(t, []ruleCase{
		{name: "logged in from abroad", rule: `{id: r, kind: foreign_login, action: review}`, lines: []Line{onigiri(1)}, pay: abroad, want: Review,
			reason: "account logged in from abroad in the last 24h"},
		{name: "not abroad", rule: `{id: r, kind: foreign_login, action: review}`, lines: []Line{packs(1)}, pay: pay("a"), want: Allow},
		{name: "the category", rule: `{id: r, kind: foreign_login, action: deny, categories: [tobacco]}`, lines: []Line{onigiri(1), packs(1)}, pay: abroad, want: Deny,
			reason: "account logged in from abroad in the last 24h"},
		{name: "not the category", rule: `{id: r, kind: foreign_login, action: deny, categories: [tobacco]}`, lines: []Line{onigiri(1)}, pay: abroad, want: Allow},
		{name: "category from the catalog", rule: `{id: r, kind: foreign_login, action: deny, categories: [tobacco]}`,
			lines: []Line{{JAN: "4901234000018", Quantity: 1, UnitPrice: 600}}, pay: abroad, want: Deny, reason: "account logged in from abroad in the last 24h"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: foreign_login, action: deny, mode: shadow}`, lines: []Line{onigiri(1)}, pay: abroad, want: Allow,
			reason: "account logged in from abroad in the last 24h"},
	})
}

func TestForeignLoginLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: foreign_login, action: review, categories: [tobacco]}`},
		{name: "a field of another kind", rule: `{id: r, kind: foreign_login, action: review, within: 24h, maxAmount: -1}`, problems: []string{
			"rules[0].maxAmount: not used by kind foreign_login",
			"rules[0].within: not used by kind foreign_login",
			"rules[0].maxAmount: must be >= 0",
		}},
	})
}

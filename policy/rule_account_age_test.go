package policy

import (
	"testing"
	"time"
)

func TestAccountAge(t *testing.T) {
	const days3 = `{id: r, kind: account_age, action: review, minAge: 72h}`
	created := func(ago time.Duration) Payment {
		return Payment{Kind: TokenPG1, Account: "a", AccountSince: t0.Add(-ago)}
	}
	testRuleCases(t, []ruleCase{
		{name: "young", rule: days3, lines: []Line{packs(1)}, pay: created(2 * time.Hour), want: Review,
			reason: "account created 2h0m0s before the sale < minimum 72h0m0s"},
		{name: "exactly old enough", rule: days3, lines: []Line{packs(1)}, pay: created(72 * time.Hour), want: Allow},
		{name: "one second too young", rule: days3, lines: []Line{packs(1)}, pay: created(72*time.Hour - time.Second), want: Review,
			reason: "account created 71h59m59s before the sale < minimum 72h0m0s"},
		{name: "created after the sale is clock skew", rule: days3, lines: []Line{packs(1)}, pay: created(-time.Minute), want: Review,
			reason: "account created 0s before the sale < minimum 72h0m0s"},
		{name: "token does not say", rule: days3, lines: []Line{packs(1)}, pay: pay("a"), want: Allow},
		{name: "young but not the category", rule: `{id: r, kind: account_age, action: review, minAge: 72h, categories: [tobacco-carton]}`,
			lines: []Line{packs(1)}, pay: created(time.Hour), want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: account_age, action: deny, mode: shadow, minAge: 72h}`,
			lines: []Line{packs(1)}, pay: created(time.Hour), want: Allow, reason: "account created 1h0m0s before the sale < minimum 72h0m0s"},
	})
}

func TestAccountAgeLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: account_age, action: review, minAge: 1h}`},
		{name: "no minAge", rule: `{id: r, kind: account_age, action: review}`, problems: []string{
			"rules[0].minAge: must be > 0",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: account_age, action: review, minAge: 1h, within: 1h}`, problems: []string{
			"rules[0].within: not used by kind account_age",
		}},
	})
}

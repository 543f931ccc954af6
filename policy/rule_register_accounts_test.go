package policy

import (
	"testing"
	"time"
)

func TestRegisterAccounts(t *testing.T) {
	const cartons3 = `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 3}`
	otherRegister := pastSale("c", time.Minute, cartons(1))
	otherRegister.Register = "R2"
	refused := pastSale("c", time.Minute, cartons(1))
	refused.Denied = true
	testRuleCases(t, []ruleCase{
		{name: "at the limit, this account counted once", rule: cartons3, lines: []Line{cartons(1)}, pay: pay("d"),
			past: []PastSale{pastSale("a", 29*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("b", 10*time.Minute, cartons(1)), pastSale("d", 5*time.Minute, cartons(1))}, want: Allow},
		{name: "one over; a sale exactly window ago counts", rule: cartons3, lines: []Line{cartons(1)}, pay: pay("d"),
			past: []PastSale{pastSale("a", 30*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("c", 10*time.Minute, cartons(1)), pastSale("e", 10*time.Minute, onigiri(1))}, want: Deny,
			reason: "4 accounts at register R1 in 30m0s > limit 3"},
		{name: "a sale one second before the window", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("a", 30*time.Minute+time.Second, cartons(1))}, want: Allow},
		{name: "another register does not count", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{otherRegister}, want: Allow},
		{name: "a refused attempt counts", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{refused}, want: Deny, reason: "2 accounts at register R1 in 30m0s > limit 1"},
		{name: "not for other goods", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), want: Allow},
		{name: "no categories: any sale", rule: `{id: r, kind: register_accounts, action: review, window: 30m, maxAccounts: 1}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), past: []PastSale{pastSale("a", time.Minute, packs(1))}, want: Review,
			reason: "2 accounts at register R1 in 30m0s > limit 1"},
		{name: "empty cart", rule: `{id: r, kind: register_accounts, action: review, window: 30m, maxAccounts: 0}`, pay: pay("d"), want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: register_accounts, action: deny, mode: shadow, window: 30m, maxAccounts: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), want: Allow, reason: "1 accounts at register R1 in 30m0s > limit 0"},
	})
}

func TestRegisterAccountsLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 0}`},
		{name: "no window, no limit", rule: `{id: r, kind: register_accounts, action: deny}`, problems: []string{
			"rules[0].window: must be > 0",
			"rules[0].maxAccounts: is required for register_accounts",
		}},
		{name: "negative", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: -1}`, problems: []string{
			"rules[0].maxAccounts: must be >= 0",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 1, within: 1h}`, problems: []string{
			"rules[0].within: not used by kind register_accounts",
		}},
	})
}

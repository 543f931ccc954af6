package policy

import (
	"testing"
	"time"
)

// pastAt is pastSale made at another store and register.
func pastAt(store, register string, s PastSale) PastSale {
	s.Store, s.Register = store, register
	return s
}

func TestRegisterAccounts(t *testing.T) {
	const cartons3 = `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 3}`
	const till1 = `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1, scope: register}`
	const store1 = `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 1, scope: store}`
	otherRegister := pastAt("S1", "R2", pastSale("c", time.Minute, cartons(1)))
	otherStore := pastAt("S2", "R1", pastSale("c", time.Minute, cartons(1)))
	refused := refusedSale("c", time.Minute, cartons(1))
	// The crew alternating tills: a and c at R1, b and e at R2.
	alternating := []PastSale{
		pastSale("a", 20*time.Minute, cartons(1)), pastAt("S1", "R2", pastSale("b", 15*time.Minute, cartons(1))),
		pastSale("c", 10*time.Minute, cartons(1)), pastAt("S1", "R2", pastSale("e", 5*time.Minute, cartons(1))),
	}
	testRuleCases(t, []ruleCase{
		{name: "at the limit, this account counted once", rule: cartons3, lines: []Line{cartons(1)}, pay: pay("d"),
			past: []PastSale{pastSale("a", 29*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("b", 10*time.Minute, cartons(1)), pastSale("d", 5*time.Minute, cartons(1))}, want: Allow},
		{name: "one over; a sale exactly window ago counts", rule: cartons3, lines: []Line{cartons(1)}, pay: pay("d"),
			past: []PastSale{pastSale("a", 30*time.Minute, cartons(1)), pastSale("b", 20*time.Minute, cartons(1)), pastSale("c", 10*time.Minute, cartons(1)), pastSale("e", 10*time.Minute, onigiri(1))}, want: Deny,
			reason: "4 accounts at store S1 in 30m0s > limit 3"},
		{name: "a sale one second before the window", rule: store1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("a", 30*time.Minute+time.Second, cartons(1))}, want: Allow},
		{name: "the store is the default: the crew alternating tills", rule: cartons3, lines: []Line{cartons(1)}, pay: pay("d"),
			past: alternating, want: Deny, reason: "5 accounts at store S1 in 30m0s > limit 3"},
		{name: "register scope: only this till's half of the crew", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 3, scope: register}`,
			lines: []Line{cartons(1)}, pay: pay("d"), past: alternating, want: Allow},
		{name: "store scope: another register counts", rule: store1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{otherRegister}, want: Deny, reason: "2 accounts at store S1 in 30m0s > limit 1"},
		{name: "register scope: another register does not count", rule: till1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{otherRegister}, want: Allow},
		{name: "register scope: this register counts", rule: till1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{pastSale("c", time.Minute, cartons(1))}, want: Deny, reason: "2 accounts at register R1 in 30m0s > limit 1"},
		{name: "store scope: another store does not count", rule: store1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{otherStore}, want: Allow},
		{name: "register scope: another store's till of the same name does not count", rule: till1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{otherStore}, want: Allow},
		{name: "a refused attempt counts", rule: store1,
			lines: []Line{cartons(1)}, pay: pay("d"), past: []PastSale{refused}, want: Deny, reason: "2 accounts at store S1 in 30m0s > limit 1"},
		{name: "not for other goods", rule: `{id: r, kind: register_accounts, action: deny, categories: [tobacco-carton], window: 30m, maxAccounts: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), want: Allow},
		{name: "no categories: any sale", rule: `{id: r, kind: register_accounts, action: review, window: 30m, maxAccounts: 1, scope: register}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), past: []PastSale{pastSale("a", time.Minute, packs(1))}, want: Review,
			reason: "2 accounts at register R1 in 30m0s > limit 1"},
		{name: "empty cart", rule: `{id: r, kind: register_accounts, action: review, window: 30m, maxAccounts: 0}`, pay: pay("d"), want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: register_accounts, action: deny, mode: shadow, window: 30m, maxAccounts: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("d"), want: Allow, reason: "1 accounts at store S1 in 30m0s > limit 0"},
	})
}

func TestRegisterAccountsLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 0}`},
		{name: "register scope", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 0, scope: register}`},
		{name: "store scope", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 0, scope: store}`},
		{name: "no window, no limit", rule: `{id: r, kind: register_accounts, action: deny}`, problems: []string{
			"rules[0].window: must be > 0",
			"rules[0].maxAccounts: is required for register_accounts",
		}},
		{name: "negative", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: -1}`, problems: []string{
			"rules[0].maxAccounts: must be >= 0",
		}},
		{name: "unknown scope", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 1, scope: chain}`, problems: []string{
			`rules[0].scope: must be register or store, not "chain"`,
		}},
		{name: "scope is case-sensitive", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 1, scope: Store}`, problems: []string{
			`rules[0].scope: must be register or store, not "Store"`,
		}},
		{name: "a field of another kind", rule: `{id: r, kind: register_accounts, action: deny, window: 30m, maxAccounts: 1, within: 1h}`, problems: []string{
			"rules[0].within: not used by kind register_accounts",
		}},
	})
}

package policy

import (
	"testing"
	"time"
)

func TestAccountVelocity(t *testing.T) {
	const cartonSales2 = `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2}`
	denied := refusedSale("a", time.Minute, cartons(5))
	// The same account's cartons at both tills of the store and at another
	// store: one each.
	tills := []PastSale{
		pastSale("a", 30*time.Minute, cartons(1)),
		pastAt("S1", "R2", pastSale("a", 20*time.Minute, cartons(1))),
		pastAt("S2", "R1", pastSale("a", 10*time.Minute, cartons(1))),
	}
	testRuleCases(t, []ruleCase{
		{name: "the store is the default: both tills count, not the other store", rule: cartonSales2, lines: []Line{cartons(1)}, pay: pay("a"),
			past: tills, want: Review, reason: "3 sales of tobacco cartons by the account at store S1 in 1h0m0s > limit 2"},
		{name: "store scope, amount", rule: `{id: r, kind: account_velocity, action: deny, window: 1h, maxAmount: 12000, scope: store}`, lines: []Line{cartons(1)}, pay: pay("a"),
			past: tills, want: Deny, reason: "¥18,000 by the account at store S1 in 1h0m0s > limit ¥12,000"},
		{name: "register scope: this till only", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2, scope: register}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: tills, want: Allow},
		{name: "register scope: over at this till", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 1, maxQuantity: 1, scope: register}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: tills, want: Review,
			reason: "2 sales of tobacco cartons by the account at register R1 in 1h0m0s > limit 1; 2 items of tobacco cartons by the account at register R1 in 1h0m0s > limit 1"},
		{name: "sales at the limit, this one counted", rule: cartonSales2, lines: []Line{cartons(1)}, pay: pay("a"),
			past: []PastSale{pastSale("a", 10*time.Minute, cartons(1)), pastSale("a", 5*time.Minute, onigiri(1))}, want: Allow},
		{name: "one over; a sale exactly window ago counts", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2, maxQuantity: 3}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(2)), pastSale("a", time.Minute, cartons(1))}, want: Review,
			reason: "3 sales of tobacco cartons by the account at store S1 in 1h0m0s > limit 2; 4 items of tobacco cartons by the account at store S1 in 1h0m0s > limit 3"},
		{name: "a sale one second before the window", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour+time.Second, onigiri(1))}, want: Allow},
		{name: "amount at the limit", rule: `{id: r, kind: account_velocity, action: deny, window: 24h, maxAmount: 12000}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(1))}, want: Allow},
		{name: "amount over; other accounts do not count", rule: `{id: r, kind: account_velocity, action: deny, window: 24h, maxAmount: 10000}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(1)), pastSale("b", time.Hour, cartons(9))}, want: Deny,
			reason: "¥12,000 by the account at store S1 in 24h0m0s > limit ¥10,000"},
		{name: "a refused attempt is no sale", rule: cartonSales2, lines: []Line{cartons(1)}, pay: pay("a"),
			past: []PastSale{pastSale("a", 10*time.Minute, cartons(1)), denied}, want: Allow},
		{name: "not for other goods", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		{name: "no account, no history", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 0}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenOpaque}, want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: account_velocity, action: deny, mode: shadow, window: 1h, maxQuantity: 0}`,
			lines: []Line{onigiri(2)}, pay: pay("a"), want: Allow, reason: "2 items by the account at store S1 in 1h0m0s > limit 0"},
	})
}

func TestAccountVelocityLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "every limit", rule: `{id: r, kind: account_velocity, action: review, window: 1m, maxSales: 0, maxAmount: 0, maxQuantity: 0}`},
		{name: "no window, no limit", rule: `{id: r, kind: account_velocity, action: review}`, problems: []string{
			"rules[0].window: must be > 0",
			"rules[0]: account_velocity needs maxSales, maxAmount or maxQuantity",
		}},
		{name: "negative limits", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: -1, maxAmount: -1, maxQuantity: -1}`, problems: []string{
			"rules[0].maxQuantity: must be >= 0",
			"rules[0].maxSales: must be >= 0",
			"rules[0].maxAmount: must be >= 0",
		}},
		{name: "either scope", rule: `{id: r, kind: account_velocity, action: review, window: 1m, maxSales: 0, scope: register}`},
		{name: "unknown scope", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1, scope: x}`, problems: []string{
			`rules[0].scope: must be register or store, not "x"`,
		}},
		{name: "a field of another kind", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1, maxAccounts: 1}`, problems: []string{
			"rules[0].maxAccounts: not used by kind account_velocity",
		}},
	})
}

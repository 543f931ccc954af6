package policy

import (
	"testing"
	"time"
)

func TestAccountVelocity(t *testing.T) {
	const cartonSales2 = `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2}`
	denied := pastSale("a", time.Minute, cartons(5))
	denied.Denied = true
	testRuleCases(t, []ruleCase{
		{name: "sales at the limit, this one counted", rule: cartonSales2, lines: []Line{cartons(1)}, pay: pay("a"),
			past: []PastSale{pastSale("a", 10*time.Minute, cartons(1)), pastSale("a", 5*time.Minute, onigiri(1))}, want: Allow},
		{name: "one over; a sale exactly window ago counts", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 2, maxQuantity: 3}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(2)), pastSale("a", time.Minute, cartons(1))}, want: Review,
			reason: "3 sales of tobacco cartons by the account in 1h0m0s > limit 2; 4 items of tobacco cartons by the account in 1h0m0s > limit 3"},
		{name: "a sale one second before the window", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour+time.Second, onigiri(1))}, want: Allow},
		{name: "amount at the limit", rule: `{id: r, kind: account_velocity, action: deny, window: 24h, maxAmount: 12000}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(1))}, want: Allow},
		{name: "amount over; other accounts do not count", rule: `{id: r, kind: account_velocity, action: deny, window: 24h, maxAmount: 10000}`,
			lines: []Line{cartons(1)}, pay: pay("a"), past: []PastSale{pastSale("a", time.Hour, cartons(1)), pastSale("b", time.Hour, cartons(9))}, want: Deny,
			reason: "¥12,000 by the account in 24h0m0s > limit ¥10,000"},
		{name: "a refused attempt is no sale", rule: cartonSales2, lines: []Line{cartons(1)}, pay: pay("a"),
			past: []PastSale{pastSale("a", 10*time.Minute, cartons(1)), denied}, want: Allow},
		{name: "not for other goods", rule: `{id: r, kind: account_velocity, action: review, categories: [tobacco-carton], window: 1h, maxSales: 0}`,
			lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		{name: "no account, no history", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 0}`,
			lines: []Line{onigiri(1)}, pay: Payment{Kind: TokenOpaque}, want: Allow},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: account_velocity, action: deny, mode: shadow, window: 1h, maxQuantity: 0}`,
			lines: []Line{onigiri(2)}, pay: pay("a"), want: Allow, reason: "2 items by the account in 1h0m0s > limit 0"},
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
		{name: "a field of another kind", rule: `{id: r, kind: account_velocity, action: review, window: 1h, maxSales: 1, maxAccounts: 1}`, problems: []string{
			"rules[0].maxAccounts: not used by kind account_velocity",
		}},
	})
}

package policy

import (
	"testing"
	"time"
)

func TestFreshTopUp(t *testing.T) {
	const cartons1h = `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 12000}`
	topUp := func(ago time.Duration, amount int64) Payment {
		return Payment{Kind: TokenPG1, Account: "a", TopUpAt: t0.Add(-ago), TopUpAmount: amount}
	}
	testRuleCases(t, []ruleCase{
		{name: "exactly within, sale exactly at minAmount", rule: cartons1h, lines: []Line{cartons(2)}, pay: topUp(time.Hour, 20000), want: Review,
			reason: "top-up ¥20,000 1h0m0s before a ¥12,000 sale of tobacco cartons (within 1h0m0s, min ¥12,000)"},
		{name: "one second too old", rule: cartons1h, lines: []Line{cartons(2)}, pay: topUp(time.Hour+time.Second, 20000), want: Allow},
		{name: "sale one yen below minAmount", rule: cartons1h,
			lines: []Line{cartons(1), {JAN: "4901234000100", Category: "tobacco-carton", Quantity: 1, UnitPrice: 5999}}, pay: topUp(time.Minute, 20000), want: Allow},
		{name: "categories: only their lines count", rule: cartons1h, lines: []Line{cartons(1), onigiri(30)}, pay: topUp(time.Minute, 20000), want: Allow},
		{name: "categories not in the sale", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h}`,
			lines: []Line{onigiri(1)}, pay: topUp(time.Minute, 20000), want: Allow},
		{name: "top-up exactly at minTopUp", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, minTopUp: 5000}`,
			lines: []Line{onigiri(1)}, pay: topUp(time.Minute, 5000), want: Review,
			reason: "top-up ¥5,000 1m0s before a ¥200 sale (within 1h0m0s, top-up min ¥5,000)"},
		{name: "top-up one yen below minTopUp", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, minTopUp: 5000}`,
			lines: []Line{cartons(2)}, pay: topUp(time.Minute, 4999), want: Allow},
		{name: "top-up after the sale is clock skew, as fresh as it gets", rule: `{id: r, kind: fresh_topup, action: deny, within: 1h}`,
			lines: []Line{onigiri(1)}, pay: topUp(-time.Minute, 1000), want: Deny, reason: "top-up ¥1,000 0s before a ¥200 sale (within 1h0m0s)"},
		{name: "sub-second age is not shown", rule: `{id: r, kind: fresh_topup, action: deny, within: 1h}`,
			lines: []Line{onigiri(1)}, pay: topUp(90*time.Second+300*time.Millisecond, 1000), want: Deny, reason: "top-up ¥1,000 1m30s before a ¥200 sale (within 1h0m0s)"},
		{name: "token does not say", rule: `{id: r, kind: fresh_topup, action: deny, within: 1h}`, lines: []Line{cartons(9)}, pay: pay("a"), want: Allow},
		{name: "no earlier sale: this one alone is under minAmount", rule: cartons1h, lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000), want: Allow},
		{name: "the store is the default: spent at both tills since the top-up", rule: cartons1h, lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000),
			past: []PastSale{pastAt("S1", "R2", pastSale("a", 10*time.Minute, cartons(1), onigiri(5)))}, want: Review,
			reason: "top-up ¥20,000 20m0s before a ¥6,000 sale of tobacco cartons, ¥12,000 by the account at store S1 since the top-up (within 1h0m0s, min ¥12,000)"},
		{name: "store scope: sales before the top-up, another store's, other accounts' and refused ones do not count", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 12000, scope: store}`,
			lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000), past: []PastSale{
				pastSale("a", 21*time.Minute, cartons(5)), pastAt("S2", "R1", pastSale("a", 10*time.Minute, cartons(5))),
				pastSale("b", 10*time.Minute, cartons(5)), refusedSale("a", 10*time.Minute, cartons(5)),
			}, want: Allow},
		{name: "a sale exactly at the top-up counts", rule: cartons1h, lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000),
			past: []PastSale{pastSale("a", 20*time.Minute, cartons(1))}, want: Review,
			reason: "top-up ¥20,000 20m0s before a ¥6,000 sale of tobacco cartons, ¥12,000 by the account at store S1 since the top-up (within 1h0m0s, min ¥12,000)"},
		{name: "register scope: the other till does not count", rule: `{id: r, kind: fresh_topup, action: review, categories: [tobacco-carton], within: 1h, minAmount: 12000, scope: register}`,
			lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000), past: []PastSale{pastAt("S1", "R2", pastSale("a", 10*time.Minute, cartons(1)))}, want: Allow},
		{name: "register scope: this till counts", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, minAmount: 12000, scope: register}`,
			lines: []Line{cartons(1)}, pay: topUp(20*time.Minute, 20000), past: []PastSale{pastSale("a", 10*time.Minute, cartons(1))}, want: Review,
			reason: "top-up ¥20,000 20m0s before a ¥6,000 sale, ¥12,000 by the account at register R1 since the top-up (within 1h0m0s, min ¥12,000)"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: fresh_topup, action: deny, mode: shadow, within: 1h, minAmount: 200}`,
			lines: []Line{onigiri(1)}, pay: topUp(time.Minute, 1000), want: Allow, reason: "top-up ¥1,000 1m0s before a ¥200 sale (within 1h0m0s, min ¥200)"},
	})
}

func TestFreshTopUpLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "within only", rule: `{id: r, kind: fresh_topup, action: review, within: 1s}`},
		{name: "no within", rule: `{id: r, kind: fresh_topup, action: review, minAmount: 1}`, problems: []string{
			"rules[0].within: must be > 0",
		}},
		{name: "negative", rule: `{id: r, kind: fresh_topup, action: review, within: -1h, minAmount: -1, minTopUp: -1}`, problems: []string{
			"rules[0].minAmount: must be >= 0",
			"rules[0].minTopUp: must be >= 0",
			"rules[0].within: must be > 0",
		}},
		{name: "either scope", rule: `{id: r, kind: fresh_topup, action: review, within: 1s, scope: store}`},
		{name: "unknown scope", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, scope: till}`, problems: []string{
			`rules[0].scope: must be register or store, not "till"`,
		}},
		{name: "a field of another kind", rule: `{id: r, kind: fresh_topup, action: review, within: 1h, window: 1h}`, problems: []string{
			"rules[0].window: not used by kind fresh_topup",
		}},
	})
}

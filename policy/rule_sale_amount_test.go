package policy

import "testing"

func TestSaleAmount(t *testing.T) {
	const sale10000 = `{id: r, kind: sale_amount, action: review, maxAmount: 10000}`
	testRuleCases(t, []ruleCase{
		{name: "at the limit", rule: sale10000, lines: []Line{onigiri(50)}, want: Allow},
		{name: "one yen over", rule: sale10000, lines: []Line{onigiri(50), {JAN: "4999999999999", Quantity: 1, UnitPrice: 1}}, want: Review,
			reason: "sale ¥10,001 > limit ¥10,000"},
		{name: "empty cart", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 0}`, want: Allow},
		{name: "categories: only their lines count", rule: `{id: r, kind: sale_amount, action: deny, categories: [tobacco, tobacco-carton], maxAmount: 6000}`,
			lines: []Line{cartons(1), onigiri(40)}, want: Allow},
		{name: "categories: over, named by their labels", rule: `{id: r, kind: sale_amount, action: deny, categories: [tobacco, tobacco-carton], maxAmount: 6000}`,
			lines: []Line{cartons(1), packs(1), onigiri(1)}, want: Deny, reason: "tobacco packs and tobacco cartons ¥6,600 > limit ¥6,000"},
		{name: "label replaces the category labels", rule: `{id: r, kind: sale_amount, action: deny, categories: [tobacco-carton], label: cartons, maxAmount: 0}`,
			lines: []Line{cartons(1)}, want: Deny, reason: "cartons ¥6,000 > limit ¥0"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: sale_amount, action: deny, mode: shadow, maxAmount: 0}`,
			lines: []Line{onigiri(1)}, want: Allow, reason: "sale ¥200 > limit ¥0"},
	})
}

func TestSaleAmountLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "zero limit", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 0}`},
		{name: "no limit", rule: `{id: r, kind: sale_amount, action: review}`, problems: []string{
			"rules[0].maxAmount: is required for sale_amount",
		}},
		{name: "negative", rule: `{id: r, kind: sale_amount, action: review, maxAmount: -1}`, problems: []string{
			"rules[0].maxAmount: must be >= 0",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: sale_amount, action: review, maxAmount: 1, maxQuantity: 1}`, problems: []string{
			"rules[0].maxQuantity: not used by kind sale_amount",
		}},
	})
}

package policy

import "testing"

func TestCartLimit(t *testing.T) {
	const qty2 = `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 2}`
	const tobacco10200 = `{id: r, kind: cart_limit, action: review, categories: [tobacco, tobacco-carton], maxAmount: 10200}`
	const units20 = `{id: r, kind: cart_limit, action: review, categories: [tobacco, tobacco-carton], maxUnits: 20}`
	testRuleCases(t, []ruleCase{
		{name: "quantity at the limit", rule: qty2, lines: []Line{cartons(2), onigiri(5)}, want: Allow},
		{name: "quantity one over, over two lines", rule: qty2, lines: []Line{cartons(2), cartons(1)}, want: Deny,
			reason: "tobacco cartons 3 > limit 2"},
		{name: "zero means none at all", rule: `{id: r, kind: cart_limit, action: review, categories: [tobacco-carton], maxQuantity: 0}`,
			lines: []Line{cartons(1)}, want: Review, reason: "tobacco cartons 1 > limit 0"},
		{name: "other categories do not count", rule: qty2, lines: []Line{cartons(1), packs(9), onigiri(30)}, want: Allow},
		{name: "empty cart", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 0}`, want: Allow},
		{name: "amount at the limit", rule: tobacco10200, lines: []Line{cartons(1), packs(7)}, want: Allow},
		{name: "amount one yen over", rule: tobacco10200,
			lines: []Line{cartons(1), packs(7), {JAN: "4901234000018", Category: "tobacco", Quantity: 1, UnitPrice: 1}}, want: Review,
			reason: "tobacco packs and tobacco cartons ¥10,201 > limit ¥10,200"},
		{name: "units at the limit", rule: units20, lines: []Line{cartons(2)}, want: Allow},
		{name: "units one over", rule: units20, lines: []Line{cartons(2), packs(1)}, want: Review,
			reason: "tobacco packs and tobacco cartons 21 units > limit 20 units"},
		{name: "units and category from the catalog when the line has none", rule: `{id: r, kind: cart_limit, action: review, categories: [tobacco-carton], maxUnits: 20, label: cartons}`,
			lines: []Line{{JAN: "4901234000100", Quantity: 3, UnitPrice: 6000}}, want: Review, reason: "cartons 30 units > limit 20 units"},
		{name: "every limit exceeded is named", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco-carton], maxQuantity: 1, maxAmount: 6000, maxUnits: 10}`,
			lines: []Line{cartons(2)}, want: Deny,
			reason: "tobacco cartons 2 > limit 1; tobacco cartons ¥12,000 > limit ¥6,000; tobacco cartons 20 units > limit 10 units"},
		{name: "items the catalog does not know", rule: `{id: r, kind: cart_limit, action: review, categories: [unknown], maxQuantity: 3}`,
			lines: []Line{{JAN: "4999999999999", Quantity: 4, UnitPrice: 100}}, want: Review, reason: "unknown items 4 > limit 3"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: cart_limit, action: deny, mode: shadow, categories: [tobacco-carton], maxQuantity: 2}`,
			lines: []Line{cartons(3)}, want: Allow, reason: "tobacco cartons 3 > limit 2"},
	})
}

func TestCartLimitLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "every limit", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco], maxQuantity: 0, maxAmount: 0, maxUnits: 0}`},
		{name: "no limit, no category", rule: `{id: r, kind: cart_limit, action: deny}`, problems: []string{
			"rules[0]: cart_limit needs maxQuantity, maxAmount or maxUnits",
			"rules[0].categories: cart_limit needs at least one category",
		}},
		{name: "negative limits", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco], maxQuantity: -1, maxAmount: -1, maxUnits: -1}`, problems: []string{
			"rules[0].maxQuantity: must be >= 0",
			"rules[0].maxUnits: must be >= 0",
			"rules[0].maxAmount: must be >= 0",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: cart_limit, action: deny, categories: [tobacco], maxQuantity: 1, window: 1h}`, problems: []string{
			"rules[0].window: not used by kind cart_limit",
		}},
	})
}

package policy

import "strconv"

// KindCartLimit caps what one sale holds of some categories: items
// (maxQuantity), yen (maxAmount) or sellable units (maxUnits: quantity
// times the catalog's units, so 2 cartons are 20 packs).
const KindCartLimit = "cart_limit"

var cartLimitKind = ruleKind{
	fields: []string{"maxQuantity", "maxAmount", "maxUnits"},
	check: func(c *ruleCheck) {
		if c.r.MaxQuantity == nil && c.r.MaxAmount == nil && c.r.MaxUnits == nil {
			c.add("", "cart_limit needs maxQuantity, maxAmount or maxUnits")
		}
		if len(c.r.Categories) == 0 {
			// A cap on the whole cart is sale_amount.
			c.add("categories", "cart_limit needs at least one category")
		}
	},
	eval: evalCartLimit,
}

// evalCartLimit fires when the categories' lines in this sale are over any
// of the limits, naming each one exceeded.
func evalCartLimit(e *evaluation, r *Rule) {
	s := e.sums(r.Categories, r.MaxUnits != nil)
	var reason string
	if r.MaxQuantity != nil && s.quantity > *r.MaxQuantity {
		reason = join(reason, r.label+" "+strconv.Itoa(s.quantity)+" > limit "+strconv.Itoa(*r.MaxQuantity))
	}
	if r.MaxAmount != nil && s.amount > *r.MaxAmount {
		reason = join(reason, r.label+" "+yen(s.amount)+" > limit "+yen(*r.MaxAmount))
	}
	if r.MaxUnits != nil && s.units > *r.MaxUnits {
		reason = join(reason, r.label+" "+strconv.Itoa(s.units)+" units > limit "+strconv.Itoa(*r.MaxUnits)+" units")
	}
	if reason != "" {
		e.fireRule(r, reason, nil)
	}
}

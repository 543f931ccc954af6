package policy

import (
	"strconv"

	"github.com/posguard/posguard/policy/sale"
)

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
	var buf [3]sale.Reason
	why := buf[:0]
	if r.MaxQuantity != nil && s.quantity > *r.MaxQuantity {
		reason = join(reason, r.label+" "+strconv.Itoa(s.quantity)+" > limit "+strconv.Itoa(*r.MaxQuantity))
		why = append(why, sale.Reason{Code: sale.CodeCartQuantity, Value: int64(s.quantity), Limit: int64(*r.MaxQuantity), Unit: sale.UnitItems, Category: r.names})
	}
	if r.MaxAmount != nil && s.amount > *r.MaxAmount {
		reason = join(reason, r.label+" "+yen(s.amount)+" > limit "+yen(*r.MaxAmount))
		why = append(why, sale.Reason{Code: sale.CodeCartAmount, Value: s.amount, Limit: *r.MaxAmount, Unit: sale.UnitYen, Category: r.names})
	}
	if r.MaxUnits != nil && s.units > *r.MaxUnits {
		reason = join(reason, r.label+" "+strconv.Itoa(s.units)+" units > limit "+strconv.Itoa(*r.MaxUnits)+" units")
		why = append(why, sale.Reason{Code: sale.CodeCartUnits, Value: int64(s.units), Limit: int64(*r.MaxUnits), Unit: sale.UnitUnits, Category: r.names})
	}
	if reason != "" {
		e.fireRule(r, reason, why)
	}
}

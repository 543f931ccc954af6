package policy

import "github.com/posguard/posguard/policy/sale"

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
	var buf [3]sale.Reason
	why := buf[:0]
	over := func(n, limit int64, unit string) {
		e.wNext()
		e.w(r.label)
		e.w(" ")
		if unit == sale.UnitYen {
			e.wYen(n)
			e.w(" > limit ")
			e.wYen(limit)
		} else {
			e.wInt(n)
			if unit == sale.UnitUnits {
				e.w(" units")
			}
			e.w(" > limit ")
			e.wInt(limit)
			if unit == sale.UnitUnits {
				e.w(" units")
			}
		}
	}
	if r.MaxQuantity != nil && s.quantity > *r.MaxQuantity {
		over(int64(s.quantity), int64(*r.MaxQuantity), sale.UnitItems)
		why = append(why, sale.Reason{Code: sale.CodeCartQuantity, Value: int64(s.quantity), Limit: int64(*r.MaxQuantity), Unit: sale.UnitItems, Category: r.names})
	}
	if r.MaxAmount != nil && s.amount > *r.MaxAmount {
		over(s.amount, *r.MaxAmount, sale.UnitYen)
		why = append(why, sale.Reason{Code: sale.CodeCartAmount, Value: s.amount, Limit: *r.MaxAmount, Unit: sale.UnitYen, Category: r.names})
	}
	if r.MaxUnits != nil && s.units > *r.MaxUnits {
		over(int64(s.units), int64(*r.MaxUnits), sale.UnitUnits)
		why = append(why, sale.Reason{Code: sale.CodeCartUnits, Value: int64(s.units), Limit: int64(*r.MaxUnits), Unit: sale.UnitUnits, Category: r.names})
	}
	if len(why) > 0 {
		e.fireRule(r, why...)
	}
}

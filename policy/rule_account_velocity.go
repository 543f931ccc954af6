package policy

import "github.com/posguard/posguard/policy/sale"

// KindAccountVelocity caps what the paying account buys within window,
// this sale included: sales (maxSales), yen (maxAmount) or items
// (maxQuantity), of the categories if any. Scope store (the default) sums
// the account's sales at every till of the store, scope register at this
// till only.
const KindAccountVelocity = "account_velocity"

var accountVelocityKind = ruleKind{
	fields: []string{"window", "maxSales", "maxAmount", "maxQuantity", "scope"},
	check: func(c *ruleCheck) {
		c.positive("window", c.r.Window)
		if c.r.MaxSales == nil && c.r.MaxAmount == nil && c.r.MaxQuantity == nil {
			c.add("", "account_velocity needs maxSales, maxAmount or maxQuantity")
		}
		c.scope()
	},
	eval: evalAccountVelocity,
}

func evalAccountVelocity(e *evaluation, r *Rule) {
	pm := &e.req.Payment
	if pm.Account == "" {
		return
	}
	s := e.sums(r.Categories, false)
	if len(r.Categories) > 0 && !s.matched {
		return
	}
	t := e.hist.AccountSales(pm.Account, e.req.Store, e.scopeRegister(r), e.req.At.Add(-r.Window.D()), r.Categories)
	t.Sales++
	t.Amount += s.amount
	t.Quantity += s.quantity
	// The sentence is written only once a limit is exceeded: the quiet
	// path writes nothing.
	var buf [3]sale.Reason
	why := buf[:0]
	over := func(code string, value, limit int64, unit string) {
		e.wNext()
		if unit == sale.UnitYen {
			e.wYen(value)
		} else {
			e.wInt(value)
			e.w(" ")
			e.w(unit) // "sales", "items"
		}
		if len(r.Categories) > 0 {
			e.w(" of ")
			e.w(r.label)
		}
		e.w(" by the account ")
		e.wScopePlace(r)
		e.w(" in ")
		e.w(durText(r.windowText, r.Window))
		e.w(" > limit ")
		if unit == sale.UnitYen {
			e.wYen(limit)
		} else {
			e.wInt(limit)
		}
		scope, place := e.scopeOf(r)
		why = append(why, sale.Reason{Code: code, Value: value, Limit: limit, Unit: unit,
			Window: secs(r.Window.D()), Scope: scope, Place: place, Category: r.names})
	}
	if r.MaxSales != nil && t.Sales > *r.MaxSales {
		over(sale.CodeVelocitySales, int64(t.Sales), int64(*r.MaxSales), sale.UnitSales)
	}
	if r.MaxAmount != nil && t.Amount > *r.MaxAmount {
		over(sale.CodeVelocityAmount, t.Amount, *r.MaxAmount, sale.UnitYen)
	}
	if r.MaxQuantity != nil && t.Quantity > *r.MaxQuantity {
		over(sale.CodeVelocityQuantity, int64(t.Quantity), int64(*r.MaxQuantity), sale.UnitItems)
	}
	if len(why) > 0 {
		e.fireRule(r, why...)
	}
}

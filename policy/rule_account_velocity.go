package policy

import (
	"strconv"

	"github.com/posguard/posguard/policy/sale"
)

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
	// Reason text is built only once a limit is exceeded: the quiet path
	// must not allocate.
	in := func() string {
		by := " by the account " + e.scopePlace(r) + " in " + r.Window.D().String() + " > limit "
		if len(r.Categories) > 0 {
			return " of " + r.label + by
		}
		return by
	}
	var reason string
	var buf [3]sale.Reason
	why := buf[:0]
	add := func(code string, value, limit int64, unit string) {
		scope, place := e.scopeOf(r)
		why = append(why, sale.Reason{Code: code, Value: value, Limit: limit, Unit: unit,
			Window: secs(r.Window.D()), Scope: scope, Place: place, Category: r.names})
	}
	if r.MaxSales != nil && t.Sales > *r.MaxSales {
		reason = join(reason, strconv.Itoa(t.Sales)+" sales"+in()+strconv.Itoa(*r.MaxSales))
		add(sale.CodeVelocitySales, int64(t.Sales), int64(*r.MaxSales), sale.UnitSales)
	}
	if r.MaxAmount != nil && t.Amount > *r.MaxAmount {
		reason = join(reason, yen(t.Amount)+in()+yen(*r.MaxAmount))
		add(sale.CodeVelocityAmount, t.Amount, *r.MaxAmount, sale.UnitYen)
	}
	if r.MaxQuantity != nil && t.Quantity > *r.MaxQuantity {
		reason = join(reason, strconv.Itoa(t.Quantity)+" items"+in()+strconv.Itoa(*r.MaxQuantity))
		add(sale.CodeVelocityQuantity, int64(t.Quantity), int64(*r.MaxQuantity), sale.UnitItems)
	}
	if reason != "" {
		e.fireRule(r, reason, why)
	}
}

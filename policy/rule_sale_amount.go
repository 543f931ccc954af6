package policy

import "github.com/posguard/posguard/policy/sale"

// KindSaleAmount caps the yen of one sale (maxAmount): the whole sale, or
// with categories the total of their lines.
const KindSaleAmount = "sale_amount"

var saleAmountKind = ruleKind{
	fields: []string{"maxAmount"},
	check: func(c *ruleCheck) {
		if c.r.MaxAmount == nil {
			c.add("maxAmount", "is required for sale_amount")
		}
	},
	eval: evalSaleAmount,
}

func evalSaleAmount(e *evaluation, r *Rule) {
	if r.MaxAmount == nil {
		return // only a Policy built without Load can lack it
	}
	s := e.sums(r.Categories, false)
	if s.amount > *r.MaxAmount {
		what := "sale"
		if len(r.Categories) > 0 {
			what = r.label
		}
		e.w(what)
		e.w(" ")
		e.wYen(s.amount)
		e.w(" > limit ")
		e.wYen(*r.MaxAmount)
		e.fireRule(r, sale.Reason{Code: sale.CodeSaleAmount, Value: s.amount, Limit: *r.MaxAmount, Unit: sale.UnitYen, Category: r.names})
	}
}

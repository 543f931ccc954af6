package policy

// KindFreshTopUp catches the 7pay pattern of spending a top-up at once: the
// token's top-up of at least minTopUp yen was at most within before the
// sale, and the sale (of the categories, if any) is at least minAmount.
const KindFreshTopUp = "fresh_topup"

var freshTopUpKind = ruleKind{
	fields: []string{"within", "minAmount", "minTopUp"},
	check: func(c *ruleCheck) {
		c.positive("within", c.r.Within)
	},
	eval: evalFreshTopUp,
}

func evalFreshTopUp(e *evaluation, r *Rule) {
	pm := &e.req.Payment
	if pm.TopUpAt.IsZero() || pm.TopUpAmount < r.MinTopUp {
		return
	}
	age := e.req.At.Sub(pm.TopUpAt)
	if age < 0 {
		age = 0 // a top-up "after" the sale is clock skew: as fresh as it gets
	}
	if age > r.Within.D() {
		return
	}
	s := e.sums(r.Categories, false)
	if (len(r.Categories) > 0 && !s.matched) || s.amount < r.MinAmount {
		return
	}
	reason := "top-up " + yen(pm.TopUpAmount) + " " + span(age) + " before a " + yen(s.amount) + " sale"
	if len(r.Categories) > 0 {
		reason += " of " + r.label
	}
	reason += " (within " + r.Within.D().String()
	if r.MinAmount > 0 {
		reason += ", min " + yen(r.MinAmount)
	}
	if r.MinTopUp > 0 {
		reason += ", top-up min " + yen(r.MinTopUp)
	}
	e.fire(r.ID, r.Action, r.Mode, reason+")")
}

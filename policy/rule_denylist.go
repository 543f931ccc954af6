package policy

import "github.com/posguard/posguard/policy/sale"

// KindDenylist fires for an account on HQ's denylist (History.Denylisted).
// It has no fields of its own.
const KindDenylist = "denylist"

var denylistKind = ruleKind{eval: evalDenylist}

func evalDenylist(e *evaluation, r *Rule) {
	acct := e.req.Payment.Account
	if acct != "" && e.applies(r) && e.hist.Denylisted(acct) {
		e.fireRule(r, "account is on the HQ denylist", []sale.Reason{{Code: sale.CodeDenylisted, Category: r.names}})
	}
}

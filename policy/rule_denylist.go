package policy

import (
	"time"

	"github.com/posguard/posguard/policy/sale"
)

// KindDenylist fires for an account on HQ's denylist (History.Denylisted).
// It has no fields of its own.
const KindDenylist = "denylist"

var denylistKind = ruleKind{eval: evalDenylist}

// DenylistReasons is a History that knows why each denylist entry is there
// and until when (entries HQ's chain rules add expire). When the History
// has it, Evaluate asks it instead of Denylisted, at the sale's time, so an
// entry expired by then is absent and the reason names the rule that added
// the account.
type DenylistReasons interface {
	// DenylistReason reports whether the account is on the list at at;
	// rule and reason are empty for an entry without details.
	DenylistReason(account string, at time.Time) (rule, reason string, listed bool)
}

// denylisted asks h about acct at the sale's time at.
func denylisted(h History, acct string, at time.Time) (rule, reason string, listed bool) {
	if acct == "" {
		return "", "", false
	}
	if dr, ok := h.(DenylistReasons); ok {
		return dr.DenylistReason(acct, at)
	}
	return "", "", h.Denylisted(acct)
}

func evalDenylist(e *evaluation, r *Rule) {
	if !e.applies(r) {
		return
	}
	rule, reason, listed := denylisted(e.hist, e.req.Payment.Account, e.req.At)
	switch {
	case !listed:
	case rule != "":
		// Text is the rule that listed the account, which the templates
		// name in both languages.
		e.w("account is on the HQ denylist: chain rule ")
		e.w(rule)
		e.w(" (")
		e.w(reason)
		e.w(")")
		e.fireRule(r, sale.Reason{Code: sale.CodeDenylisted, Category: r.names, Text: rule})
	default:
		e.w("account is on the HQ denylist")
		e.fireRule(r, sale.Reason{Code: sale.CodeDenylisted, Category: r.names})
	}
}

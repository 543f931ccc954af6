package chain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
)

// KindRefusedThenElsewhere fires when an account denied or held at one
// store pays at another store within the window: a refusal the crew simply
// walked away from. It fires at the first payment at each other store.
const KindRefusedThenElsewhere = "refused_then_elsewhere"

const (
	refusedAt = "refused:"
	paidAt    = "paid:"
)

var refusedThenElsewhereKind = ruleKind{
	check: func(*ruleCheck) {},
	observe: func(r *Rule, ev *event.Event) []fact {
		if req, ok := refused(ev); ok {
			return []fact{{key: req.Payment.Account, member: refusedAt + ev.Store}}
		}
		if req, ok := paying(ev); ok {
			return []fact{{key: req.Payment.Account, member: paidAt + ev.Store}}
		}
		return nil
	},
	judge: func(r *Rule, ev *event.Event, facts []fact, seen []store.ChainSeen) *Firing {
		w := r.Window.D()
		own := facts[0].member
		var where []string
		var hits []store.ChainHit
		if st, isPay := strings.CutPrefix(own, paidAt); isPay {
			// A payment: refusals elsewhere up to a window before it, and
			// no payment at this store since the window began (fired then).
			for _, h := range seen[0].Others {
				if h.At.After(ev.At) || h.At.Before(ev.At.Add(-w)) {
					continue
				}
				if h.Member == own && h.At.Before(ev.At) {
					return nil
				}
				if rs, ok := strings.CutPrefix(h.Member, refusedAt); ok && rs != st && !slices.Contains(where, rs) {
					where = append(where, rs)
					hits = append(hits, h)
				}
			}
			if len(where) == 0 {
				return nil
			}
			acct := ev.Request.Payment.Account
			return &Firing{
				Account: acct, Accounts: []string{acct}, Stores: uniqueSorted(append(where, st)), Events: events(ev, hits),
				Reason: fmt.Sprintf("%s: refused at %s, paid at %s within %s", KindRefusedThenElsewhere,
					strings.Join(where, ", "), st, w),
			}
		}
		// A refusal that arrived after the payments it precedes (a late
		// outbox, another HQ instance): payments elsewhere up to a window
		// after it.
		rs := strings.TrimPrefix(own, refusedAt)
		for _, h := range seen[0].Others {
			if h.At.Before(ev.At) || h.At.After(ev.At.Add(w)) {
				continue
			}
			if ps, ok := strings.CutPrefix(h.Member, paidAt); ok && ps != rs && !slices.Contains(where, ps) {
				where = append(where, ps)
				hits = append(hits, h)
			}
		}
		if len(where) == 0 {
			return nil
		}
		acct := ev.Request.Payment.Account
		return &Firing{
			Account: acct, Accounts: []string{acct}, Stores: uniqueSorted(append(where, rs)), Events: events(ev, hits),
			Reason: fmt.Sprintf("%s: refused at %s, paid at %s within %s", KindRefusedThenElsewhere,
				rs, strings.Join(where, ", "), w),
		}
	},
}

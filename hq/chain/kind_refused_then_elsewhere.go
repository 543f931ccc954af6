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
		s := seen[0]
		if !strings.HasPrefix(facts[0].member, paidAt) || hasMember(s, facts[0].member) {
			return nil // a refusal, or not the first payment at this store
		}
		var where []string
		var hits []store.ChainHit
		for _, h := range s.Others {
			if st, ok := strings.CutPrefix(h.Member, refusedAt); ok && st != ev.Store {
				where = append(where, st)
				hits = append(hits, h)
			}
		}
		if len(where) == 0 {
			return nil
		}
		acct := ev.Request.Payment.Account
		stores := slices.Sorted(slices.Values(append(slices.Clone(where), ev.Store)))
		return &Firing{
			Account: acct, Accounts: []string{acct}, Stores: stores, Events: events(ev, hits),
			Reason: fmt.Sprintf("%s: refused at %s, paid at %s within %s", KindRefusedThenElsewhere,
				strings.Join(where, ", "), ev.Store, r.Window.D()),
		}
	},
}

package chain

import (
	"fmt"
	"slices"
	"strings"
	"time"

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
		others := seen[0].Others
		if st, isPay := strings.CutPrefix(own, paidAt); isPay {
			// A payment: refusals elsewhere up to a window before it, and
			// no payment at this store since the window began (fired then).
			for _, h := range others {
				if h.Member == own && h.At.Before(ev.At) && !h.At.Before(ev.At.Add(-w)) {
					return nil
				}
			}
			where, hits := elsewhere(others, refusedAt, st, ev.At.Add(-w), ev.At)
			return refusedFiring(r, ev, hits, strings.Join(where, ", "), st, where)
		}
		// A refusal that arrived after the payments it precedes (a late
		// outbox, another HQ instance): payments elsewhere up to a window
		// after it.
		rs := strings.TrimPrefix(own, refusedAt)
		where, hits := elsewhere(others, paidAt, rs, ev.At, ev.At.Add(w))
		return refusedFiring(r, ev, hits, rs, strings.Join(where, ", "), where)
	},
}

// elsewhere lists the stores other than here of the hits whose member has
// prefix, at [from, to], each once with its first hit.
func elsewhere(hits []store.ChainHit, prefix, here string, from, to time.Time) (where []string, first []store.ChainHit) {
	for _, h := range hits {
		if h.At.Before(from) || h.At.After(to) {
			continue
		}
		if st, ok := strings.CutPrefix(h.Member, prefix); ok && st != here && !slices.Contains(where, st) {
			where = append(where, st)
			first = append(first, h)
		}
	}
	return where, first
}

func refusedFiring(r *Rule, ev *event.Event, hits []store.ChainHit, refusedIn, paidIn string, others []string) *Firing {
	if len(others) == 0 {
		return nil
	}
	acct := ev.Request.Payment.Account
	return &Firing{
		Account: acct, Accounts: []string{acct}, Stores: uniqueSorted(append(others, ev.Store)), Events: events(ev, hits),
		Reason: fmt.Sprintf("%s: refused at %s, paid at %s within %s", KindRefusedThenElsewhere, refusedIn, paidIn, r.Window.D()),
	}
}

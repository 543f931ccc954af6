package chain

import (
	"fmt"
	"slices"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
)

// KindAccountStores fires when one account pays at minStores or more
// different stores within the window: a crew's accounts hopping stores. It
// fires at the sale that reaches the count, and again at each further new
// store while the count holds.
const KindAccountStores = "account_stores"

var accountStoresKind = ruleKind{
	fields: []string{"minStores"},
	check: func(c *ruleCheck) {
		c.between("minStores", c.r.MinStores, 2, store.MaxChainMembers)
	},
	observe: func(r *Rule, ev *event.Event) []fact {
		if req, ok := paying(ev); ok {
			return []fact{{key: req.Payment.Account, member: ev.Store}}
		}
		return nil
	},
	judge: func(r *Rule, ev *event.Event, _ []fact, seen []store.ChainSeen) *Firing {
		hits, ok := window(ev.Store, ev.At, r.Window.D(), seen[0].Others, true)
		if !ok || len(hits)+1 < r.MinStores {
			return nil
		}
		stores := append(members(hits), ev.Store)
		slices.Sort(stores)
		acct := ev.Request.Payment.Account
		return &Firing{
			Account: acct, Accounts: []string{acct}, Stores: stores, Events: events(ev, hits),
			Reason: fmt.Sprintf("%s: account paid at %d stores within %s", KindAccountStores, len(stores), r.Window.D()),
		}
	},
}

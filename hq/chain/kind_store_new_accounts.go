package chain

import (
	"fmt"
	"slices"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
)

// KindStoreNewAccounts fires when minAccounts or more distinct accounts
// pay at one store within the window, each with a fresh top-up or a newly
// bound device (topped up, or the device bound, at most freshFor before
// the sale, as the register's request says): a crew working one store with
// accounts made for the job. It is a store incident: the alert names the
// store, and the denylist action lists every account seen.
const KindStoreNewAccounts = "store_new_accounts"

var storeNewAccountsKind = ruleKind{
	fields: []string{"minAccounts", "freshFor"},
	check: func(c *ruleCheck) {
		c.between("minAccounts", c.r.MinAccounts, 2, store.MaxChainMembers)
		if c.r.FreshFor <= 0 {
			c.add("freshFor", "must be > 0 (how recent a top-up or device binding counts as fresh)")
		}
	},
	observe: func(r *Rule, ev *event.Event) []fact {
		req, ok := paying(ev)
		if !ok {
			return nil
		}
		pm, fresh := &req.Payment, r.FreshFor.D()
		recent := func(t time.Time) bool { return !t.IsZero() && !t.After(req.At) && req.At.Sub(t) <= fresh }
		if !recent(pm.TopUpAt) && !recent(pm.DeviceSince) {
			return nil
		}
		return []fact{{key: ev.Store, member: pm.Account}}
	},
	judge: func(r *Rule, ev *event.Event, facts []fact, seen []store.ChainSeen) *Firing {
		acct := facts[0].member
		hits, ok := window(acct, ev.At, r.Window.D(), seen[0].Others, true)
		if !ok || len(hits)+1 < r.MinAccounts {
			return nil
		}
		accounts := append(members(hits), acct)
		slices.Sort(accounts)
		return &Firing{
			Accounts: accounts, Stores: []string{ev.Store}, Events: events(ev, hits),
			Reason: fmt.Sprintf("%s: %d accounts with fresh top-ups or devices paid at %s within %s",
				KindStoreNewAccounts, len(accounts), ev.Store, r.Window.D()),
		}
	},
}

package chain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
)

// KindTokenReuse fires when the same one-time payment token (issuer and
// token id) is presented at two stores within the window, whatever the
// registers decided: a token copied off a customer's screen. A register
// catches reuse within its store; only HQ sees two stores.
const KindTokenReuse = "token_reuse"

var tokenReuseKind = ruleKind{
	check: func(*ruleCheck) {},
	observe: func(r *Rule, ev *event.Event) []fact {
		req, _, ok := decision(ev)
		if !ok || req.Payment.TokenID == "" {
			return nil
		}
		return []fact{{key: req.Payment.Issuer + "\x1f" + req.Payment.TokenID, member: ev.Store}}
	},
	judge: func(r *Rule, ev *event.Event, _ []fact, seen []store.ChainSeen) *Firing {
		hits, ok := window(ev.Store, ev.At, r.Window.D(), seen[0].Others, true)
		if !ok || len(hits) == 0 {
			return nil
		}
		stores := append(members(hits), ev.Store)
		slices.Sort(stores)
		acct := ev.Request.Payment.Account
		return &Firing{
			Account: acct, Accounts: []string{acct}, Stores: stores, Events: events(ev, hits),
			Reason: fmt.Sprintf("%s: token %s seen at %s", KindTokenReuse, ev.Request.Payment.TokenID, strings.Join(stores, ", ")),
		}
	},
}

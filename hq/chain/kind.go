package chain

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/sale"
)

// Each rule kind is one file, kind_<kind>.go: its fields, its checks at
// load, what it records about an event and how it judges what the store
// saw, registered by one entry in ruleKinds.

// ruleKind is one kind of chain rule.
type ruleKind struct {
	// fields are the kind-specific Rule fields the kind reads.
	fields []string
	check  func(c *ruleCheck)
	// observe lists what the rule records about ev: under a key (an
	// account, a store, a token) a member (a store, an account). nil when
	// the event is nothing to the rule.
	observe func(r *Rule, ev *event.Event) []fact
	// judge decides from what the store saw for each fact (same order),
	// all of them new; nil when the rule does not fire.
	judge func(r *Rule, ev *event.Event, facts []fact, seen []store.ChainSeen) *Firing
}

type fact struct{ key, member string }

// ruleKinds is every kind a chain rules document may use.
var ruleKinds = map[string]*ruleKind{
	KindAccountStores:        &accountStoresKind,
	KindRefusedThenElsewhere: &refusedThenElsewhereKind,
	KindStoreNewAccounts:     &storeNewAccountsKind,
	KindTokenReuse:           &tokenReuseKind,
	KindExpr:                 &exprKind,
}

func kindNames() string {
	names := make([]string, 0, len(ruleKinds))
	for k := range ruleKinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// decision is ev's request and decision when ev is a register's decision
// on a sale paid from an account; alerts repeat decisions and are skipped.
func decision(ev *event.Event) (*sale.Request, *sale.Decision, bool) {
	if ev.Type != event.Decision || ev.Request == nil || ev.Decision == nil || ev.Request.Payment.Account == "" {
		return nil, nil, false
	}
	return ev.Request, ev.Decision, true
}

// paying reports an allowed sale: the account paid.
func paying(ev *event.Event) (*sale.Request, bool) {
	req, d, ok := decision(ev)
	return req, ok && d.Outcome == sale.Allow
}

// refused reports a sale denied or held for review.
func refused(ev *event.Event) (*sale.Request, bool) {
	req, d, ok := decision(ev)
	return req, ok && (d.Outcome == sale.Deny || d.Outcome == sale.Review)
}

// window finds the window of the rule's length w that holds the event's
// own observation (member at t) with the most distinct members, among the
// windows where the event's member appears by this event alone when
// ownNew is set (so a rule fires when a member is added, not on every
// repeat). It returns the window's other members, each with its first
// hit, ordered by time; ok is false when no window qualifies. Windows on
// either side of t count: with several HQ instances, or a register
// flushing its outbox late, events do not arrive in time order.
func window(member string, t time.Time, w time.Duration, hits []store.ChainHit, ownNew bool) (best []store.ChainHit, ok bool) {
	starts := []time.Time{t.Add(-w), t}
	for _, h := range hits {
		if !h.At.Before(t.Add(-w)) && !h.At.After(t) {
			starts = append(starts, h.At)
		}
	}
	for _, s := range starts {
		end := s.Add(w)
		var in []store.ChainHit
		seen := map[string]bool{}
		clash := false
		for _, h := range hits {
			if h.At.Before(s) || h.At.After(end) {
				continue
			}
			if h.Member == member {
				clash = true
				if ownNew {
					break
				}
				continue
			}
			if !seen[h.Member] {
				seen[h.Member] = true
				in = append(in, h)
			}
		}
		if clash && ownNew {
			continue
		}
		if !ok || len(in) > len(best) {
			best, ok = in, true
		}
	}
	return best, ok
}

func members(hits []store.ChainHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Member
	}
	return out
}

// events lists the trigger first, then the events of the hits.
func events(ev *event.Event, hits []store.ChainHit) []string {
	out := []string{ev.ID}
	for _, h := range hits {
		if !slices.Contains(out, h.EventID) {
			out = append(out, h.EventID)
		}
	}
	return out
}

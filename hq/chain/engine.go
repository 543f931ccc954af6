package chain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/wire"
)

// CaseOpener opens a case for the account (or, with account "", for the store) or adds the
// alert to the open one; it returns the case id.
type CaseOpener interface {
	OpenOrExtend(ctx context.Context, account, store string, alert event.Event) (string, error)
}

// Firing is a rule that fired on an event.
type Firing struct {
	Rule    *Rule
	Trigger event.Event
	// Account is the account concerned; "" for a store incident
	// (store_new_accounts), whose Accounts are all those seen.
	Account  string
	Accounts []string
	Stores   []string // the stores concerned, sorted
	Events   []string // the trigger first, then the events it completed
	Reason   string   // for people, naming the rule's kind

	failed error // the rule could not judge the event (expr)
}

// Engine evaluates a document's rules over events, keeping its counts in
// the store.
type Engine struct {
	doc   *Document
	store store.Chain
}

// NewEngine evaluates doc's rules with their counts in st.
func NewEngine(doc *Document, st store.Chain) *Engine { return &Engine{doc: doc, store: st} }

// Rules are the engine's rules, in document order.
func (e *Engine) Rules() []Rule { return e.doc.Rules }

// MaxWindow is the longest window of the engine's rules: observations
// older than that before the newest events are no longer needed.
func (e *Engine) MaxWindow() time.Duration {
	var w time.Duration
	for _, r := range e.doc.Rules {
		w = max(w, r.Window.D())
	}
	return w
}

// Evaluate records what each rule sees in evs (events already stored) and
// returns the rules that fired, with the failures of rules that could not
// judge an event. Each observation is recorded once by event id: an event
// evaluated again (redelivered, or by another HQ instance) fires nothing.
// The firings are kept pending in the store with the observations that
// trip them, in one transaction (store.Chain.ChainClaim hands them out),
// so a crash before they are acted on loses none.
func (e *Engine) Evaluate(ctx context.Context, evs []event.Event) ([]Firing, []error, error) {
	var obs []store.ChainObs
	var todo []pending
	// order is each event's place in the batch: an event is judged as if
	// the batch's later events had not come yet, so a threshold two of
	// them reach together fires once, at the later one.
	order := make(map[string]int, len(evs))
	for i := range evs {
		ev := &evs[i]
		if _, dup := order[ev.ID]; dup {
			continue
		}
		order[ev.ID] = i
		for j := range e.doc.Rules {
			r := &e.doc.Rules[j]
			facts := r.kind.observe(r, ev)
			if len(facts) == 0 {
				continue
			}
			todo = append(todo, pending{r: r, ev: ev, facts: facts, first: len(obs)})
			for _, f := range facts {
				obs = append(obs, store.ChainObs{Rule: r.ID, Key: f.key, Member: f.member, EventID: ev.ID, At: ev.At, Window: r.Window.D()})
			}
		}
	}
	if len(obs) == 0 {
		return nil, nil, nil
	}
	var fired []Firing
	var failed []error
	keep := func(seen []store.ChainSeen) ([]store.ChainFiring, error) {
		fired, failed = judgeAll(todo, order, seen)
		out := make([]store.ChainFiring, len(fired))
		for i := range fired {
			b, err := fired[i].marshal()
			if err != nil {
				return nil, fmt.Errorf("rule %s: keep firing: %w", fired[i].Rule.ID, err)
			}
			out[i] = store.ChainFiring{ID: fired[i].ID(), At: fired[i].Trigger.At, Body: b}
		}
		return out, nil
	}
	if _, err := e.store.ChainObserve(ctx, obs, keep); err != nil {
		return nil, nil, err
	}
	return fired, failed, nil
}

// pending is one rule's observations of one event, awaiting judgement.
type pending struct {
	r     *Rule
	ev    *event.Event
	facts []fact
	first int // index of its first observation
}

// judgeAll judges each rule's new observations by what the store saw.
func judgeAll(todo []pending, order map[string]int, seen []store.ChainSeen) ([]Firing, []error) {
	// Events this call recorded first, by place in the batch; a duplicate
	// that another instance recorded before is no later event of ours.
	recorded := make(map[string]int, len(order))
	for _, p := range todo {
		if seen[p.first].New {
			recorded[p.ev.ID] = order[p.ev.ID]
		}
	}
	var fired []Firing
	var failed []error
	for _, p := range todo {
		s := seen[p.first : p.first+len(p.facts)]
		if !s[0].New {
			continue // seen before: judged then
		}
		me := order[p.ev.ID]
		for k := range s {
			s[k].Others = slices.DeleteFunc(slices.Clone(s[k].Others), func(h store.ChainHit) bool {
				i, ours := recorded[h.EventID]
				return ours && i > me
			})
		}
		f := p.r.kind.judge(p.r, p.ev, p.facts, s)
		switch {
		case f == nil:
		case f.failed != nil:
			failed = append(failed, f.failed)
		default:
			f.Rule, f.Trigger = p.r, *p.ev
			f.Reason = clip(f.Reason, wire.MaxTextLen)
			fired = append(fired, *f)
		}
	}
	return fired, failed
}

// maxAlertEvents bounds the event ids an alert and a list detail carry.
const maxAlertEvents = wire.MaxDetailEvents

// Alert is the HQ alert event the firing raises. Its id is made from the
// rule and the trigger, so every HQ instance makes the same one and the
// store keeps it once.
func (f *Firing) Alert() event.Event {
	stores := f.Stores
	actions := []string{}
	if f.Rule.Mode == ModeEnforce {
		actions = slices.Clone(f.Rule.Actions)
	}
	return event.Event{
		ID:  f.ID(),
		Seq: 1, Type: event.Alert, Store: event.HQStore, Register: event.HQChain, At: f.Trigger.At,
		Detail: fmt.Sprintf("chain rule %s: %s", f.Rule.ID, f.Reason),
		Chain: &event.ChainInfo{Rule: f.Rule.ID, Kind: f.Rule.Kind, Mode: f.Rule.Mode, Reason: f.Reason,
			Account: f.Account, Stores: stores, Events: f.Events[:min(len(f.Events), maxAlertEvents)], Actions: actions},
	}
}

// ID is the id of the firing and of its alert, made from the rule and the
// trigger: every HQ instance makes the same one, and the store keeps it
// once.
func (f *Firing) ID() string {
	h := sha256.Sum256([]byte(f.Trigger.ID))
	return event.ID(event.HQStore, event.HQChain, f.Rule.ID+"."+hex.EncodeToString(h[:8]), 1)
}

// Detail is the denylist detail of the firing's accounts, expiring
// denylistFor after now.
func (f *Firing) Detail(now time.Time) wire.ListDetail {
	return wire.ListDetail{ExpiresAt: now.Add(f.Rule.DenylistFor.D()).UTC(), Rule: f.Rule.ID,
		Reason: f.Reason, Events: f.Events[:min(len(f.Events), maxAlertEvents)]}
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func uniqueSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

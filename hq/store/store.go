// Package store is HQ's storage: every register event stored once by id,
// the fleet's last status, and the authoritative denylist with its sequence.
// Two backends: PostgreSQL for real deployments, a bbolt file so the demo
// needs nothing installed.
package store

import (
	"context"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

// Store is what HQ needs from its database. Implementations are safe for
// concurrent use.
type Store interface {
	// SaveEvents stores each event once by id; an id already stored is
	// skipped. When SaveEvents returns nil every event is durable and may be
	// acknowledged. inserted counts the new ones.
	SaveEvents(ctx context.Context, evs []event.Event) (inserted int, err error)
	// SaveStatus records a register's latest status (or last will).
	SaveStatus(ctx context.Context, st wire.Status, received time.Time) error
	// Fleet lists every register that has ever reported, ordered by store
	// and register.
	Fleet(ctx context.Context) ([]Register, error)
	// Events lists stored events matching q, oldest first.
	Events(ctx context.Context, q Query) ([]event.Event, error)
	// Alerts lists the alert events matching q (its Types are ignored),
	// oldest first, each with its state from the resolution event HQ
	// stored for the same sale, if any.
	Alerts(ctx context.Context, q Query) ([]Alert, error)
	// DenylistChange applies a change to the denylist and returns the
	// list's new version. The change, its number and its record (an
	// event.DenylistChanged event naming who and why) are one atomic step,
	// so two HQ instances never hand out the same number and no change is
	// unrecorded. The version's epoch is made when the store is created and
	// kept in it: registers tell this store's list from another's by it.
	DenylistChange(ctx context.Context, c ListChange) (wire.ListVersion, error)
	// Denylist returns the current list and its version.
	Denylist(ctx context.Context) (wire.ListVersion, []string, error)
	CaseStore      // cases.go
	AllowlistStore // cases.go
	Chain          // chain.go
	Policies       // policies.go
	Stats          // stats.go: the console's hourly rollup
	Feed           // feed.go: alerts in storing order
	ListsStore     // lists.go
	FleetView      // fleet.go
	Close() error
}

// ListChange is one change to the denylist, with who made it and why.
type ListChange struct {
	Add, Remove []string
	At          time.Time
	By          string // the authenticated caller
	Reason      string
	Details     map[string]wire.ListDetail // per added account; nil for plain entries
}

// record is the event that records c as version v of the denylist.
func (c ListChange) record(v wire.ListVersion) event.Event {
	ev := c.listEvent(event.DenylistChanged, event.HQDenylist, v)
	ev.Denylist = c.info(v)
	return ev
}

// allowRecord is the event that records c as version v of the allowlist,
// in the denylist record's shape.
func (c ListChange) allowRecord(v wire.ListVersion) event.Event {
	ev := c.listEvent(event.AllowlistChanged, event.HQAllowlist, v)
	ev.Allowlist = c.info(v)
	return ev
}

func (c ListChange) listEvent(t event.Type, list string, v wire.ListVersion) event.Event {
	return event.Event{
		ID: event.ID(event.HQStore, list, v.Epoch, v.Seq), Seq: v.Seq, Type: t,
		Store: event.HQStore, Register: list, At: c.At.UTC(),
	}
}

func (c ListChange) info(v wire.ListVersion) *event.ListInfo {
	return &event.ListInfo{Epoch: v.Epoch, Seq: v.Seq, Add: c.Add, Remove: c.Remove, By: c.By, Reason: c.Reason}
}

// Register is one register as HQ last heard of it.
type Register struct {
	Store    string      `json:"store"`
	Register string      `json:"register"`
	Status   wire.Status `json:"status"`
	LastSeen time.Time   `json:"lastSeen"`
}

// Alert states.
const (
	AlertOpen     = "open"      // a held sale waiting for a manager
	AlertApproved = "approved"  // held, then approved
	AlertRejected = "rejected"  // held, then rejected
	AlertTimedOut = "timed_out" // held, and nobody decided in time
	AlertDenied   = "denied"    // refused at the till: nothing to resolve
)

// Alert is an alert event as it stands now.
type Alert struct {
	event.Event
	State string `json:"state"`
	// Resolution is who ended the held sale, how and when. It takes the
	// place of the event's own field, which alerts never carry.
	Resolution *event.ResolutionInfo `json:"resolution,omitempty"`
}

// newAlert gives ev its state from res, the first resolution event of the
// same sale (nil when there is none).
func newAlert(ev event.Event, res *event.Event) Alert {
	a := Alert{Event: ev, State: AlertOpen}
	switch {
	case ev.Decision != nil && ev.Decision.Outcome == sale.Deny:
		a.State = AlertDenied
	case res != nil && res.Resolution != nil:
		a.Resolution = res.Resolution
		switch res.Resolution.Action {
		case event.Approve:
			a.State = AlertApproved
		case event.Reject:
			a.State = AlertRejected
		case event.Timeout:
			a.State = AlertTimedOut
		}
	}
	return a
}

// alertQuery is q narrowed to alerts.
func alertQuery(q Query) Query {
	q.Types = []event.Type{event.Alert}
	return q
}

// Query selects events. Zero fields do not filter.
type Query struct {
	Store    string
	Register string
	Account  string
	Types    []event.Type
	Since    time.Time // events at or after
	// After, with Since, continues a listing: only events after (Since,
	// After) in (at, id) order, so paging never drops or repeats events
	// that share a timestamp.
	After string
	// Until bounds the listing: only events before it. Before, with
	// Until, continues a newest-first listing: only events before
	// (Until, Before) in (at, id) order.
	Until  time.Time
	Before string
	// Desc lists newest first (an alert feed's first page).
	Desc bool
	// Rule keeps events whose decision fired the rule (enforced or
	// shadow) or whose chain rule it is; Outcome those whose decision has
	// that outcome (allow, review, deny).
	Rule    string
	Outcome string
	Limit   int // 0: DefaultLimit
}

// DefaultLimit bounds a query that names no limit, so an HTTP caller
// cannot ask HQ for its whole history at once.
const DefaultLimit = 1000

func (q Query) limit() int {
	if q.Limit <= 0 || q.Limit > 100*DefaultLimit {
		return DefaultLimit
	}
	return q.Limit
}

// account is the payment account an event is about, for filtering.
func account(ev event.Event) string {
	switch {
	case ev.Request != nil:
		return ev.Request.Payment.Account
	case ev.Chain != nil:
		return ev.Chain.Account
	}
	return ""
}

func (q Query) match(ev event.Event) bool {
	if q.Store != "" && ev.Store != q.Store {
		return false
	}
	if q.Register != "" && ev.Register != q.Register {
		return false
	}
	if q.Account != "" && account(ev) != q.Account {
		return false
	}
	if !q.Since.IsZero() && ev.At.Before(q.Since) {
		return false
	}
	if q.After != "" && ev.At.Equal(q.Since) && ev.ID <= q.After {
		return false
	}
	if !q.Until.IsZero() && (ev.At.After(q.Until) || ev.At.Equal(q.Until) && (q.Before == "" || ev.ID >= q.Before)) {
		return false
	}
	if q.Outcome != "" && (ev.Decision == nil || string(ev.Decision.Outcome) != q.Outcome) {
		return false
	}
	if q.Rule != "" && !firedRule(ev, q.Rule) {
		return false
	}
	if len(q.Types) > 0 {
		for _, t := range q.Types {
			if ev.Type == t {
				return true
			}
		}
		return false
	}
	return true
}

// firedRule reports whether ev's decision fired rule, or ev is the alert of
// that chain rule.
func firedRule(ev event.Event, rule string) bool {
	if ev.Chain != nil && ev.Chain.Rule == rule {
		return true
	}
	if ev.Decision != nil {
		for _, f := range ev.Decision.Rules {
			if f.ID == rule {
				return true
			}
		}
	}
	return false
}

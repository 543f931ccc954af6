package store

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/posguard/posguard/wire"
)

// FleetView is the console's view of the fleet: each query reads the
// registers it reports on and no others, so a fleet of 10,000 registers
// answers a page of stores, or one store, without reading the rest.
type FleetView interface {
	// FleetStores summarises the registers of each store, ordered by
	// store, for at most limit stores after the store named after ("":
	// from the start).
	FleetStores(ctx context.Context, after string, limit int) ([]StoreSummary, error)
	// FleetOf lists the registers of one store, ordered by register, at
	// most limit after the register named after.
	FleetOf(ctx context.Context, store, after string, limit int) ([]Register, error)
	// Rollout counts the registers in scope (wire.ScopeAll or a store) by
	// where they stand with policy version v (wire.Status.Rollout), and
	// lists up to limit of the refused and of the waiting ones.
	Rollout(ctx context.Context, scope string, v int64, limit int) (Rollout, error)
}

// StoreSummary is one store's registers at a glance.
type StoreSummary struct {
	Store     string    `json:"store"`
	Registers int       `json:"registers"`
	Online    int       `json:"online"`
	Offline   int       `json:"offline"`
	LastSeen  time.Time `json:"lastSeen"` // the most recent of its registers
	// Policies are the policy versions its registers run, with how many
	// run each, by name then version; registers with none are left out.
	Policies     []PolicyCount `json:"policies"`
	MaxOutbox    int           `json:"maxOutbox"`    // the deepest outbox: events not yet at HQ
	ScannersDown int           `json:"scannersDown"` // registers whose scanner link is down
}

// PolicyCount is how many registers run one policy version.
type PolicyCount struct {
	Name      string `json:"name"`
	Version   int64  `json:"version"`
	Registers int    `json:"registers"`
}

// Rollout is where the registers in a scope stand with one policy version.
type Rollout struct {
	Scope     string `json:"scope"`
	Version   int64  `json:"version"`
	Registers int    `json:"registers"`
	Applied   int    `json:"applied"`
	Refused   int    `json:"refused"`
	Pending   int    `json:"pending"`
	Offline   int    `json:"offline"`
	// Refusals are the refused registers with why, and Waiting the
	// pending and offline ones, each by store and register and at most
	// the limit asked.
	Refusals []RolloutRegister `json:"refusals"`
	Waiting  []RolloutRegister `json:"waiting"`
}

// RolloutRegister is one register of a rollout that is not done.
type RolloutRegister struct {
	Store         string    `json:"store"`
	Register      string    `json:"register"`
	State         string    `json:"state"` // wire.Rollout*
	Reason        string    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	PolicyVersion int64     `json:"policyVersion,omitempty"`
	Online        bool      `json:"online"`
	LastSeen      time.Time `json:"lastSeen"`
}

// MaxFleetPage bounds one page of FleetStores and FleetOf, and the lists
// of a Rollout.
const MaxFleetPage = 1000

func fleetLimit(n int) int {
	if n <= 0 || n > MaxFleetPage {
		return MaxFleetPage
	}
	return n
}

// add counts r, a register of the store, in its summary.
func (s *StoreSummary) add(r Register) {
	s.Registers++
	if r.Status.Online {
		s.Online++
	} else {
		s.Offline++
	}
	if r.LastSeen.After(s.LastSeen) {
		s.LastSeen = r.LastSeen
	}
	s.MaxOutbox = max(s.MaxOutbox, r.Status.OutboxDepth)
	if r.Status.Links.Scanner == wire.LinkDown {
		s.ScannersDown++
	}
	if p := r.Status.Policy; p != nil {
		s.addPolicy(p.Name, p.Version, 1)
	}
}

func (s *StoreSummary) addPolicy(name string, v int64, n int) {
	for i := range s.Policies {
		if s.Policies[i].Name == name && s.Policies[i].Version == v {
			s.Policies[i].Registers += n
			return
		}
	}
	s.Policies = append(s.Policies, PolicyCount{Name: name, Version: v, Registers: n})
}

// add counts r in the rollout of version ro.Version, listing it when it
// is not done and the list has room.
func (ro *Rollout) add(r Register, limit int) {
	ro.Registers++
	state, why := r.Status.Rollout(ro.Version)
	e := RolloutRegister{Store: r.Store, Register: r.Register, State: state, Reason: why,
		Online: r.Status.Online, LastSeen: r.LastSeen}
	if p := r.Status.Policy; p != nil {
		e.PolicyVersion = p.Version
	}
	switch state {
	case wire.RolloutApplied:
		ro.Applied++
		return
	case wire.RolloutRefused:
		ro.Refused++
		if rf := r.Status.Refusal; rf != nil && rf.Subject == wire.SubjectPolicy && rf.Version == ro.Version {
			e.Detail = rf.Detail
		}
		if len(ro.Refusals) < limit {
			ro.Refusals = append(ro.Refusals, e)
		}
		return
	case wire.RolloutOffline:
		ro.Offline++
	default:
		ro.Pending++
	}
	if len(ro.Waiting) < limit {
		ro.Waiting = append(ro.Waiting, e)
	}
}

func newRollout(scope string, v int64) Rollout {
	return Rollout{Scope: scope, Version: v, Refusals: []RolloutRegister{}, Waiting: []RolloutRegister{}}
}

func sortPolicies(ps []PolicyCount) {
	slices.SortFunc(ps, func(a, b PolicyCount) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
}

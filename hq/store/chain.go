package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/posguard/posguard/wire"
)

// Chain is what HQ's chain rules (hq/chain) keep in the store, so their
// counts survive a restart and are shared by every HQ instance on the store.
type Chain interface {
	// ChainObserve records each observation once by (rule, key, event id)
	// and reports, for each, whether it was new and the other members seen
	// under the same rule and key within its window. Observations of one
	// key are serialised across HQ instances, so of two events that
	// complete a count together one always sees the other.
	//
	// judge (nil: none) is called with what was seen, in the same
	// transaction; the firings it returns are kept pending (each once by
	// id) in that transaction too, so an observation is never stored
	// without the firing it trips: HQ crashing before acting loses
	// nothing (ChainClaim). An error from judge undoes the transaction.
	ChainObserve(ctx context.Context, obs []ChainObs, judge func([]ChainSeen) ([]ChainFiring, error)) ([]ChainSeen, error)
	// ChainClaim leases up to n pending firings to owner for lease, oldest
	// first: those neither done nor leased (or whose lease ran out, its
	// holder having died or stalled). Each claim counts in Tries.
	ChainClaim(ctx context.Context, owner string, lease time.Duration, n int) ([]ChainFiring, error)
	// ChainDone marks a firing carried out (or given up): no one claims
	// it again.
	ChainDone(ctx context.Context, id string) error
	// ChainRelease ends owner's leases: an HQ instance restarting under
	// the same name resumes what it had claimed without waiting for the
	// leases to run out.
	ChainRelease(ctx context.Context, owner string) error
	// ChainPrune forgets observations older than before, and firings
	// done before it.
	ChainPrune(ctx context.Context, before time.Time) (int, error)
	// ChainFires counts the alerts each chain rule raised (rule id → count).
	ChainFires(ctx context.Context) (map[string]int64, error)
	// DenylistDetails returns the details of the denylist's entries that
	// have them (automatic entries, with their expiry).
	DenylistDetails(ctx context.Context) (map[string]wire.ListDetail, error)
}

// ChainObs is one fact a chain rule records about an event: under Key
// (an account, a store, a token id) it saw Member (a store, an account).
type ChainObs struct {
	Rule    string
	Key     string
	Member  string
	EventID string
	At      time.Time
	// Window is how far back from At the other observations count; the
	// boundary is inclusive: one exactly Window before At counts.
	Window time.Duration
}

// ChainHit is another observation under the same rule and key.
type ChainHit struct {
	Member  string
	EventID string
	At      time.Time
}

// ChainSeen is what ChainObserve found for one observation.
type ChainSeen struct {
	// New is true the first time the observation is recorded: a rule acts
	// on new observations only, so an event delivered twice, or to two
	// HQ instances, counts once.
	New bool
	// Others are the other observations under the same rule and key at
	// [At-Window, At+Window] (every window of the rule's length that holds
	// the observation lies within, whatever order the events arrived in),
	// ordered by time and event id: for each member the nearest one at or
	// before At and the nearest one after, which decide whether the member
	// is in any such window; of those the MaxChainScan nearest in time.
	Others []ChainHit
}

// ChainFiring is a chain rule firing waiting to be carried out (an
// outbox entry). The store keeps Body as given; hq/chain reads it.
type ChainFiring struct {
	ID    string // one per rule and triggering event
	At    time.Time
	Body  []byte // JSON
	Tries int    // claims so far, this one included
}

// MaxChainScan bounds the observations ChainObserve reports per
// observation; MaxChainMembers bounds the thresholds a chain rule may use.
const (
	MaxChainScan    = 2 * MaxChainMembers
	MaxChainMembers = 64
)

// nearestHits picks o's Others (ChainSeen.Others) from cands, the
// observations under o's rule and key around o.At in any order: those at
// [At-Window, At+Window] but o's own, for each member and side of At the
// nearest one, of those the MaxChainScan nearest, ordered by time and
// event id. Both stores fetch the candidates and share this choice.
func nearestHits(o ChainObs, cands []ChainHit) []ChainHit {
	from, to := o.At.Add(-o.Window), o.At.Add(o.Window)
	dist := func(h ChainHit) time.Duration { return max(h.At.Sub(o.At), o.At.Sub(h.At)) }
	type side struct {
		member string
		after  bool
	}
	var in []ChainHit
	for _, h := range cands {
		if h.EventID != o.EventID && !h.At.Before(from) && !h.At.After(to) {
			in = append(in, h)
		}
	}
	if len(in) <= 1 {
		return in // the common case: nothing to choose between
	}
	near := map[side]ChainHit{}
	for _, h := range in {
		k := side{h.Member, h.At.After(o.At)}
		if n, ok := near[k]; !ok || dist(h) < dist(n) || dist(h) == dist(n) && h.EventID < n.EventID {
			near[k] = h
		}
	}
	out := make([]ChainHit, 0, len(near))
	for _, h := range near {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b ChainHit) int {
		return cmp.Or(cmp.Compare(dist(a), dist(b)), strings.Compare(a.EventID, b.EventID))
	})
	out = out[:min(len(out), MaxChainScan)]
	slices.SortFunc(out, func(a, b ChainHit) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.EventID, b.EventID))
	})
	return out
}

package store

import (
	"context"
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
	ChainObserve(ctx context.Context, obs []ChainObs) ([]ChainSeen, error)
	// ChainPrune forgets observations older than before.
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

// MaxChainScan bounds the observations ChainObserve reports per
// observation; MaxChainMembers bounds the thresholds a chain rule may use.
const (
	MaxChainScan    = 2 * MaxChainMembers
	MaxChainMembers = 64
)

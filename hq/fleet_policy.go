package hq

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/posguard/posguard/policy/bundle"
)

// pushed keeps the policy bundle retained on each policy topic, as HQ's
// subscription to them delivers it, so the console can show a push's
// rollout without being told what was pushed: `posguard policy push`
// publishes straight to the broker.
type pushed struct {
	mu     sync.Mutex
	scopes map[string]pushedPolicy
}

// pushedPolicy is the bundle retained on one scope's policy topic. Its
// header is read without verifying the signature (bundle.PeekPolicy):
// HQ does not hold the registers' keys, and each register reports its own
// verdict in its status.
type pushedPolicy struct {
	Scope string `json:"scope"`
	bundle.Header
	SeenAt time.Time `json:"seenAt"` // when HQ first saw this bundle
	// Error says why the header could not be read; the registers will
	// refuse such a bundle too.
	Error string `json:"error,omitempty"`
}

func newPushed() *pushed { return &pushed{scopes: make(map[string]pushedPolicy)} }

// observe records the bundle retained on scope's topic (an empty payload
// clears it). It reports whether anything changed: a bundle delivered
// again by a resubscription is not news.
func (p *pushed) observe(scope string, payload []byte, now time.Time, log *slog.Logger) bool {
	var pp pushedPolicy
	if len(payload) > 0 {
		pp = pushedPolicy{Scope: scope, SeenAt: now}
		h, err := bundle.PeekPolicy(payload)
		if err != nil {
			pp.Error = err.Error()
			log.Warn("policy bundle on the policy topic unreadable", "scope", scope, "err", err)
		}
		pp.Header = h
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, had := p.scopes[scope]
	switch {
	case len(payload) == 0:
		delete(p.scopes, scope)
		return had
	case had && old.Name == pp.Name && old.Version == pp.Version && old.Error == pp.Error:
		return false
	}
	p.scopes[scope] = pp
	return true
}

// list is every retained policy, the latest seen first (then by scope).
func (p *pushed) list() []pushedPolicy {
	p.mu.Lock()
	out := make([]pushedPolicy, 0, len(p.scopes))
	for _, pp := range p.scopes {
		out = append(out, pp)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b pushedPolicy) int {
		return cmp.Or(b.SeenAt.Compare(a.SeenAt), cmp.Compare(b.Version, a.Version), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

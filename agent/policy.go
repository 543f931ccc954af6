package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/token"
)

// Policy sources, as reported in status.
const (
	SourceSigned    = "signed"    // a verified bundle from HQ (stored in the state file)
	SourceBootstrap = "bootstrap" // the unsigned local file of policy.bootstrap
	SourceNone      = "none"      // no policy at all: the default failMode decides
)

// active is the policy in force with what is derived from it. It is
// replaced whole (atomic.Pointer) between decisions, never changed.
type active struct {
	p        *policy.Policy // nil when there is none at all
	source   string
	verifier *token.Verifier
}

func newActive(p *policy.Policy, source string, accountKey []byte) *active {
	var t *policy.Tokens
	if p != nil {
		t = &p.Tokens
	}
	return &active{p: p, source: source, verifier: token.NewVerifier(t, accountKey)}
}

// valid reports whether the policy may decide at now and for store; when
// it may not, failMode decides with the FailMode returned.
func (a *active) valid(now time.Time, store string) (bool, policy.FailMode) {
	if a.p == nil {
		return false, policy.DefaultFailMode()
	}
	if a.p.Expired(now) || !a.p.Covers(store) {
		// The expired policy's own failMode is what HQ chose for this case.
		return false, a.p.FailMode
	}
	return true, policy.FailMode{}
}

// version is the signed version in force; a bootstrap file counts as 0 so
// the first signed policy of any version replaces it.
func (a *active) version() int64 {
	if a.p == nil || a.source != SourceSigned {
		return 0
	}
	return a.p.Metadata.Version
}

// loadPolicy picks the policy to start with: the stored signed bundle if it
// still verifies, else the bootstrap file, else none. An expired stored
// bundle is kept (its catalog and failMode still help) unless a bootstrap
// file is valid. The returned notes explain the choice for the log.
func loadPolicy(st *state.Store, trusted []bundle.TrustedKey, store, bootstrap string, now time.Time) (*policy.Policy, string, []string) {
	var notes []string
	var expired *policy.Policy
	expiredSource := SourceSigned
	b, _, err := st.ActivePolicy()
	switch {
	case errors.Is(err, state.ErrNoPolicy):
	case err != nil:
		notes = append(notes, fmt.Sprintf("stored policy unreadable: %v", err))
	default:
		p, err := bundle.VerifyPolicy(b, trusted, store, 0, now)
		if err == nil {
			return p, SourceSigned, notes
		}
		notes = append(notes, fmt.Sprintf("stored policy not usable: %v", err))
		if bundle.ReasonOf(err) == bundle.Expired {
			if payload, _, verr := bundle.Verify(b, trusted, bundle.TypePolicy); verr == nil {
				expired, _ = policy.Load(payload)
			}
		}
	}
	if bootstrap != "" {
		p, err := policy.LoadFile(bootstrap)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("bootstrap policy unreadable: %v", err))
		case p.Expired(now):
			notes = append(notes, fmt.Sprintf("bootstrap policy %s v%d expired at %s", p.Metadata.Name, p.Metadata.Version, p.Metadata.ExpiresAt.Format(time.RFC3339)))
			if expired == nil {
				expired, expiredSource = p, SourceBootstrap
			}
		default:
			return p, SourceBootstrap, notes
		}
	}
	if expired != nil {
		return expired, expiredSource, notes
	}
	return nil, SourceNone, notes
}

package store

import (
	"context"
	"errors"
	"time"
)

// Policies is HQ's record of every policy version pushed to the registers:
// through HQ (POST /v1/policies, who is the authenticated caller) or by
// `posguard policy push` straight to the broker (seen on the retained
// policy topic, who is the signing key). The signed bundle is kept whole,
// so the record is the very bytes the registers verified.
type Policies interface {
	// SavePolicy records v once by version. Another record of the same
	// version with the same bundle digest is a repeat (inserted false,
	// nil); with another digest it is ErrPolicyConflict: registers refuse
	// a version they hold as not newer, so one version has one content.
	SavePolicy(ctx context.Context, v PolicyVersion) (inserted bool, err error)
	// PolicyVersions lists versions newest first, below Before when it is
	// set, at most Limit (DefaultPolicyLimit when 0, at most
	// MaxPolicyLimit). Bundle and Document are left out.
	PolicyVersions(ctx context.Context, q PolicyQuery) ([]PolicyVersion, error)
	// PolicyVersion returns one version whole, or ErrPolicyNotFound.
	PolicyVersion(ctx context.Context, version int64) (PolicyVersion, error)
}

// PolicyVersion is one recorded policy version.
type PolicyVersion struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"` // the topic it was first pushed on: "all" or a store id
	KID       string    `json:"kid"`   // the key that signed it
	Digest    string    `json:"digest"`
	PushedBy  string    `json:"pushedBy"`
	Source    string    `json:"source"` // PolicyViaHQ or PolicyViaBroker
	PushedAt  time.Time `json:"pushedAt"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Bundle is the signed COSE bundle, Document its payload: the
	// policy's canonical JSON.
	Bundle   []byte `json:"-"`
	Document []byte `json:"-"`
}

// Where a recorded version came from.
const (
	PolicyViaHQ     = "hq"     // POST /v1/policies
	PolicyViaBroker = "broker" // seen on the retained topic (policy push)
)

// PolicyQuery pages PolicyVersions.
type PolicyQuery struct {
	Before int64 // only versions below it; 0: from the newest
	Limit  int
}

// Bounds of a PolicyVersions page.
const (
	DefaultPolicyLimit = 50
	MaxPolicyLimit     = 500
)

func (q PolicyQuery) limit() int {
	if q.Limit <= 0 {
		return DefaultPolicyLimit
	}
	return min(q.Limit, MaxPolicyLimit)
}

var (
	// ErrPolicyNotFound: no version of that number is recorded.
	ErrPolicyNotFound = errors.New("no such policy version")
	// ErrPolicyConflict: the version is recorded with another bundle.
	ErrPolicyConflict = errors.New("policy version already recorded with another bundle")
)

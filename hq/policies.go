package hq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// HQ keeps the history of the policy versions pushed to the registers
// (store.Policies). It never signs a policy: the policy signing key stays
// on the workstation that signs offline (`posguard policy sign`). HQ
// verifies the bundles with the public keys it is given
// (Config.PolicyKeys, the registers' policy.trustedKeys), records them and
// publishes them retained exactly as `posguard policy push` does.

var (
	// ErrNoPolicyKeys: HQ was given no key to verify policy bundles with.
	ErrNoPolicyKeys = errors.New("HQ has no policy verify key (--policy-trusted-key): it cannot check a signed policy")
	// ErrBadPolicy wraps why a pushed bundle was refused.
	ErrBadPolicy = errors.New("policy bundle refused")
)

// policyQueue bounds the policy messages waiting to be recorded; pushes
// are rare, and one dropped is seen again on the next connection (the
// topic is retained).
const policyQueue = 16

// policyPublishWait bounds publishing a pushed bundle to the broker.
const policyPublishWait = 10 * time.Second

// observedPolicy is a bundle seen on the retained policy topic.
type observedPolicy struct {
	scope  string
	bundle []byte
}

// policyHistory is the Service's share of the policy history: the queue
// of bundles seen on the broker and the backtest reports (policy_report.go).
type policyHistory struct {
	seen    chan observedPolicy
	reports *reportCache
}

func newPolicyHistory() *policyHistory {
	return &policyHistory{seen: make(chan observedPolicy, policyQueue), reports: newReportCache()}
}

// PushPolicy verifies a signed policy bundle as a register of scope would
// (signature by a key of Config.PolicyKeys, the policy valid, covering the
// scope, issued and version bounds, not expired), records it as pushed by
// by, and publishes it retained on the scope's policy topic. A version
// already recorded with this very bundle is published again (to another
// scope, say) and reported as not new; with another bundle it is
// store.ErrPolicyConflict. A version recorded but not published returns
// the record and the publish error.
func (s *Service) PushPolicy(ctx context.Context, b []byte, scope, by string) (store.PolicyVersion, bool, error) {
	if len(s.cfg.PolicyKeys) == 0 {
		return store.PolicyVersion{}, false, ErrNoPolicyKeys
	}
	if err := wire.ValidateScope(scope); err != nil {
		return store.PolicyVersion{}, false, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	now := s.cfg.Now()
	// The register's own rules, with no version in force: HQ cannot know
	// every register's, and they refuse a version not newer themselves.
	p, err := bundle.VerifyPolicy(b, s.cfg.PolicyKeys, scope, 0, now)
	if err != nil {
		if bundle.ReasonOf(err) == bundle.OutOfScope {
			err = fmt.Errorf("%w; push it to the scope of one of its stores", err)
		}
		return store.PolicyVersion{}, false, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	rec, err := s.policyRecord(b, p, scope, by, store.PolicyViaHQ, now)
	if err != nil {
		return store.PolicyVersion{}, false, err
	}
	// Recorded before it is published, so HQ seeing it come back on the
	// retained topic finds it and keeps the caller as who pushed it.
	inserted, err := s.cfg.Store.SavePolicy(ctx, rec)
	if err != nil {
		return store.PolicyVersion{}, false, err
	}
	s.log.Info("policy pushed", "name", rec.Name, "version", rec.Version, "scope", scope, "by", by, "new", inserted)
	pctx, cancel := context.WithTimeout(ctx, policyPublishWait)
	defer cancel()
	if err := s.publish(pctx, wire.PolicyTopic(scope), true, b); err != nil {
		return rec, inserted, fmt.Errorf("policy v%d recorded but not published: %w", rec.Version, err)
	}
	return rec, inserted, nil
}

// policyRecord is the record of a verified bundle.
func (s *Service) policyRecord(b []byte, p *policy.Policy, scope, by, source string, now time.Time) (store.PolicyVersion, error) {
	doc, kid, err := bundle.Verify(b, s.cfg.PolicyKeys, bundle.TypePolicy)
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	sum := sha256.Sum256(b)
	m := p.Metadata
	if by == "" {
		by = kid + " (cli push)" // no caller: the key that signed it is who
	}
	return store.PolicyVersion{Version: m.Version, Name: m.Name, Scope: scope, KID: kid, Digest: hex.EncodeToString(sum[:]),
		PushedBy: by, Source: source, PushedAt: now.UTC(), IssuedAt: m.IssuedAt.UTC(), ExpiresAt: m.ExpiresAt.UTC(),
		Bundle: b, Document: doc}, nil
}

// HQ follows the retained policy topics (onConnect subscribes
// wire.PolicyFilter, New routes it here), so versions `posguard policy
// push` published straight to the broker are recorded too. Not in the
// share group: a shared subscription gets no retained messages, and every
// instance recording the same version is harmless.

// onPolicy queues a bundle seen on a policy topic; it never blocks paho's
// router.
func (s *Service) onPolicy(_ paho.Client, m paho.Message) {
	defer m.Ack()
	s.live.observe(m, s.cfg.Now()) // fleet.go: the rollout view's pushed policy
	scope, err := wire.ParsePolicyTopic(m.Topic())
	if err != nil || len(m.Payload()) == 0 { // an empty payload clears the retained bundle
		return
	}
	select {
	case s.policies.seen <- observedPolicy{scope: scope, bundle: m.Payload()}:
	default:
		s.log.Warn("policy history queue full; the bundle is recorded when seen again", "scope", scope)
	}
}

// recordPolicies records the queued bundles until ctx ends.
func (s *Service) recordPolicies(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-s.policies.seen:
			if err := s.recordObserved(ctx, o); err != nil {
				s.log.Warn("policy seen on the broker not recorded", "scope", o.scope, "err", err)
			}
		}
	}
}

// recordObserved records a bundle seen on the broker. Only the signature
// and the document are checked: a version the registers refuse (expired,
// say) was still pushed, and the history says so.
func (s *Service) recordObserved(ctx context.Context, o observedPolicy) error {
	if len(s.cfg.PolicyKeys) == 0 {
		return ErrNoPolicyKeys
	}
	doc, _, err := bundle.Verify(o.bundle, s.cfg.PolicyKeys, bundle.TypePolicy)
	if err != nil {
		return err
	}
	p, err := policy.Load(doc)
	if err != nil {
		return err
	}
	rec, err := s.policyRecord(o.bundle, p, o.scope, "", store.PolicyViaBroker, s.cfg.Now())
	if err != nil {
		return err
	}
	inserted, err := s.cfg.Store.SavePolicy(ctx, rec)
	if inserted {
		s.log.Info("policy seen on the broker recorded", "name", rec.Name, "version", rec.Version, "scope", o.scope, "kid", rec.KID)
	}
	return err
}

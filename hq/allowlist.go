package hq

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// MaxAllowFor bounds how long an allow entry may last: an analyst's word
// about an account goes stale, and the entry excuses it from rules.
const MaxAllowFor = 365 * 24 * time.Hour

// AllowlistChange records a change to the allowlist and publishes it like a
// denylist change: the signed delta (QoS 1), then the signed retained
// snapshot. Every added account needs c.Details[account].ExpiresAt, in the
// future and at most MaxAllowFor away. c.By and c.Reason are required; c.At
// is set here.
func (s *Service) AllowlistChange(ctx context.Context, c store.ListChange) (uint64, error) {
	if s.cfg.Signer == nil {
		return 0, ErrNoSigner
	}
	for _, a := range slices.Concat(c.Add, c.Remove) {
		if err := wire.CheckAccount(a); err != nil {
			return 0, fmt.Errorf("allowlist change: %w", err)
		}
	}
	if err := checkWhoWhy(c.By, c.Reason); err != nil {
		return 0, fmt.Errorf("allowlist change: %w", err)
	}
	now := s.cfg.Now()
	for _, a := range c.Add {
		exp := c.Details[a].ExpiresAt
		if !exp.After(now) || exp.Sub(now) > MaxAllowFor {
			return 0, fmt.Errorf("allowlist change: %s: expiresAt %s is not in the next %s", a, exp.Format(time.RFC3339), MaxAllowFor)
		}
	}
	d := wire.Delta{Add: c.Add, Remove: c.Remove, Details: c.Details, Epoch: "-", Seq: 1, IssuedAt: now.UTC()}
	if err := wire.ValidateAllowDelta(&d); err != nil {
		return 0, err // checked before anything is stored
	}
	s.allowMu.Lock()
	defer s.allowMu.Unlock()
	c.At = now
	v, err := s.cfg.Store.AllowlistChange(ctx, c)
	if err != nil {
		return 0, err
	}
	d.Epoch, d.Seq = v.Epoch, v.Seq
	b, err := bundle.SignAllowDelta(s.cfg.Signer, s.cfg.SignerAlg, s.cfg.SignerKID, d)
	if err != nil {
		return v.Seq, fmt.Errorf("allowlist change %d stored but not published: %w", v.Seq, err)
	}
	if err := s.publish(ctx, wire.AllowlistDelta, false, b); err != nil {
		return v.Seq, fmt.Errorf("allowlist change %d stored; delta not published (registers will heal from the snapshot): %w", v.Seq, err)
	}
	if err := s.allowSnapshot(ctx); err != nil {
		return v.Seq, fmt.Errorf("allowlist change %d published; snapshot: %w", v.Seq, err)
	}
	s.log.Info("allowlist changed", "seq", v.Seq, "added", len(c.Add), "removed", len(c.Remove), "by", c.By, "reason", c.Reason)
	return v.Seq, nil
}

// publishAllowSnapshot is publishSnapshot for the allowlist.
func (s *Service) publishAllowSnapshot(why string, coalesce bool) {
	if s.cfg.Signer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.allowMu.Lock()
	defer s.allowMu.Unlock()
	if coalesce && s.cfg.Now().Sub(s.lastAllowSnapshot) < resyncCoalesce {
		return
	}
	if err := s.allowSnapshot(ctx); err != nil {
		s.log.Error("publish allowlist snapshot", "why", why, "err", err)
	}
}

// allowSnapshot publishes the signed full allowlist, retained. Callers
// hold allowMu.
func (s *Service) allowSnapshot(ctx context.Context) error {
	v, accounts, details, err := s.cfg.Store.Allowlist(ctx)
	if err != nil {
		return err
	}
	if v.Seq == 0 {
		return nil // nothing was ever allowed
	}
	if accounts == nil {
		accounts = []string{}
	}
	b, err := bundle.SignAllowSnapshot(s.cfg.Signer, s.cfg.SignerAlg, s.cfg.SignerKID,
		wire.Snapshot{Epoch: v.Epoch, Seq: v.Seq, Accounts: accounts, Details: details, IssuedAt: s.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if err := s.publish(ctx, wire.AllowlistSnapshot, true, b); err != nil {
		return err
	}
	s.lastAllowSnapshot = s.cfg.Now()
	return nil
}

// ExpireAllowlist removes the entries expired by now with an ordinary
// change (by "hq", reason "expired"), so the list does not grow; registers
// ignore expired entries anyway. It returns how many it removed.
func (s *Service) ExpireAllowlist(ctx context.Context) (int, error) {
	if s.cfg.Signer == nil {
		return 0, nil // the instance that signs sweeps
	}
	_, accounts, details, err := s.cfg.Store.Allowlist(ctx)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	var expired []string
	for _, a := range accounts {
		if !now.Before(details[a].ExpiresAt) {
			expired = append(expired, a)
		}
	}
	if len(expired) == 0 {
		return 0, nil
	}
	if _, err := s.AllowlistChange(ctx, store.ListChange{Remove: expired, By: "hq", Reason: "expired"}); err != nil {
		return 0, err
	}
	return len(expired), nil
}

// expireAllowlistEvery runs ExpireAllowlist until ctx ends.
func (s *Service) expireAllowlistEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.ExpireAllowlist(ctx); err != nil {
				s.log.Error("expire allowlist entries", "err", err)
			} else if n > 0 {
				s.log.Info("allowlist entries expired", "removed", n)
			}
		}
	}
}

package hq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// ErrNoSigner is returned for denylist changes on an HQ without a signing key.
var ErrNoSigner = errors.New("no denylist signing key configured (--denylist-key)")

// DenylistChange records a change, then publishes it as a signed delta
// (QoS 1) and the new full list as the signed retained snapshot, so a
// register that missed the delta heals from the snapshot.
// c.By (who) and c.Reason (why) are required and stored with the change;
// c.At is set here.
func (s *Service) DenylistChange(ctx context.Context, c store.ListChange) (uint64, error) {
	if s.cfg.Signer == nil {
		return 0, ErrNoSigner
	}
	add, remove := c.Add, c.Remove
	for _, a := range slices.Concat(add, remove) {
		if err := wire.CheckAccount(a); err != nil {
			return 0, fmt.Errorf("denylist change: %w", err)
		}
	}
	if err := checkWhoWhy(c.By, c.Reason); err != nil {
		return 0, fmt.Errorf("denylist change: %w", err)
	}
	if err := checkDetails(c); err != nil { // chain_wire.go
		return 0, fmt.Errorf("denylist change: %w", err)
	}
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	now := s.cfg.Now()
	c.At = now
	v, err := s.cfg.Store.DenylistChange(ctx, c)
	if err != nil {
		return 0, err
	}
	seq := v.Seq
	s.m.denylistSeq.Set(float64(seq))
	b, err := bundle.SignDelta(s.cfg.Signer, s.cfg.SignerAlg, s.cfg.SignerKID,
		wire.Delta{Epoch: v.Epoch, Seq: seq, Add: add, Remove: remove, IssuedAt: now.UTC(), Details: c.Details})
	if err != nil {
		return seq, fmt.Errorf("denylist change %d stored but not published: %w", seq, err)
	}
	if err := s.publish(ctx, wire.DenylistDelta, false, b); err != nil {
		return seq, fmt.Errorf("denylist change %d stored; delta not published (registers will heal from the snapshot): %w", seq, err)
	}
	if err := s.snapshot(ctx); err != nil {
		return seq, fmt.Errorf("denylist change %d published; snapshot: %w", seq, err)
	}
	s.log.Info("denylist changed", "seq", seq, "added", len(add), "removed", len(remove), "by", c.By, "reason", c.Reason)
	return seq, nil
}

// MaxReasonLen bounds the reason recorded with a denylist change.
const MaxReasonLen = 500

func checkWhoWhy(by, reason string) error {
	switch {
	case by == "":
		return errors.New("who made the change is required")
	case strings.TrimSpace(reason) == "":
		return errors.New("reason: required (why the accounts are added or removed)")
	case len(reason) > MaxReasonLen:
		return fmt.Errorf("reason: longer than %d bytes", MaxReasonLen)
	case !utf8.ValidString(reason) || strings.ContainsFunc(reason, unicode.IsControl):
		return errors.New("reason: control characters or invalid UTF-8")
	}
	return nil
}

// resyncCoalesce is how long after a snapshot a resync request is answered
// by the retained snapshot already on the broker: registers healing the
// same gap all at once must not each make HQ load and sign the full list.
// A change made meanwhile, here or by another HQ instance, published its
// own snapshot.
const resyncCoalesce = 10 * time.Second

func (s *Service) publishSnapshot(why string, coalesce bool) {
	if s.cfg.Signer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	if coalesce && s.cfg.Now().Sub(s.lastSnapshot) < resyncCoalesce {
		return
	}
	if err := s.snapshot(ctx); err != nil {
		s.log.Error("publish denylist snapshot", "why", why, "err", err)
	}
}

// snapshot publishes the signed full list, retained. Callers hold denyMu
// so a snapshot never overtakes a newer one.
func (s *Service) snapshot(ctx context.Context) error {
	v, accounts, err := s.cfg.Store.Denylist(ctx)
	if err != nil {
		return err
	}
	if v.Seq == 0 {
		return nil // nothing was ever denied: no snapshot to hand out
	}
	if accounts == nil {
		accounts = []string{} // an emptied list is still a list
	}
	details, err := s.cfg.Store.DenylistDetails(ctx)
	if err != nil {
		return err
	}
	// Read apart from the list: keep the details of accounts on it only.
	var listed map[string]wire.ListDetail
	if len(details) > 0 {
		listed = make(map[string]wire.ListDetail, len(details))
		for _, a := range accounts {
			if d, ok := details[a]; ok {
				listed[a] = d
			}
		}
	}
	details = listed
	b, err := bundle.SignSnapshot(s.cfg.Signer, s.cfg.SignerAlg, s.cfg.SignerKID,
		wire.Snapshot{Epoch: v.Epoch, Seq: v.Seq, Accounts: accounts, IssuedAt: s.cfg.Now().UTC(), Details: details})
	if err != nil {
		return err
	}
	if err := s.publish(ctx, wire.DenylistSnapshot, true, b); err != nil {
		return err
	}
	s.lastSnapshot = s.cfg.Now()
	return nil
}

func (s *Service) publish(ctx context.Context, topic string, retain bool, payload []byte) error {
	if s.client == nil {
		return errors.New("not connected to the broker")
	}
	tok := s.client.Publish(topic, 1, retain, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	}
}

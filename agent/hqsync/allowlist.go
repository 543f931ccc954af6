package hqsync

import (
	"errors"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// The allowlist arrives like the denylist: signed deltas, and the retained
// snapshot to heal from; its own content types keep one list's messages
// from ever applying to the other.

func (c *Client) allowlistDelta(b []byte) {
	d, err := bundle.VerifyAllowDelta(b, c.cfg.Trusted)
	if err != nil {
		c.refuse(wire.SubjectAllowlist, 0, err)
		return
	}
	err = c.cfg.State.ApplyAllowlistDelta(d)
	var gap *state.GapError
	switch {
	case errors.As(err, &gap) && gap.Stale():
		return
	case errors.As(err, &gap):
		c.log.Warn("allowlist delta does not follow the stored list; asking HQ for a resync",
			"have", c.cfg.State.AllowlistVersion(), "got", wire.ListVersion{Epoch: d.Epoch, Seq: d.Seq}, "why", gap.Error())
		c.resyncList(wire.SubjectAllowlist, c.cfg.State.AllowlistVersion().Seq)
		return
	case err != nil:
		c.refuse(wire.SubjectAllowlist, int64(d.Seq), err)
		return
	}
	c.log.Info("allowlist delta applied", "epoch", d.Epoch, "seq", d.Seq, "added", len(d.Add), "removed", len(d.Remove))
	c.StatusChanged()
}

func (c *Client) allowlistSnapshot(b []byte) {
	s, err := bundle.VerifyAllowSnapshot(b, c.cfg.Trusted)
	if err != nil {
		c.refuse(wire.SubjectAllowlist, 0, err)
		return
	}
	v := wire.ListVersion{Epoch: s.Epoch, Seq: s.Seq}
	if v == c.cfg.State.AllowlistVersion() {
		return // the retained snapshot again, on every reconnect
	}
	reset, err := c.cfg.State.ReplaceAllowlist(s)
	var gap *state.GapError
	switch {
	case errors.As(err, &gap):
		c.log.Info("old allowlist snapshot ignored", "have", c.cfg.State.AllowlistVersion(), "got", v)
		return
	case err != nil:
		c.refuse(wire.SubjectAllowlist, int64(s.Seq), err)
		return
	}
	if reset != nil {
		c.log.Warn("allowlist replaced from another epoch or an older sequence",
			"why", reset.Why, "from", reset.From, "to", reset.To)
	}
	c.log.Info("allowlist snapshot applied", "epoch", s.Epoch, "seq", s.Seq, "accounts", len(s.Accounts))
	c.StatusChanged()
}

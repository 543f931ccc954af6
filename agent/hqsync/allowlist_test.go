package hqsync

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// The allowlist reaches the register like the denylist, heals a gap by
// asking for the allowlist's own snapshot, and HQ's expiry sweep removes
// an entry everywhere; a denylist message never applies to it.
func TestAllowlistDeltaResyncAndExpiry(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	allow := func(account string, exp time.Time) store.ListChange {
		return store.ListChange{Add: []string{account}, By: "analyst", Reason: "passed an ID check",
			Details: map[string]wire.ListDetail{account: {ExpiresAt: exp, Rule: "case:1"}}}
	}
	if _, err := r.hq.AllowlistChange(ctx, allow("bulk-buyer", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "allow entry at the register", func() bool { return r.st.Allowlisted("bulk-buyer", now) })
	if r.st.Denylisted("bulk-buyer") || r.st.DenylistSeq() != 0 {
		t.Fatal("the allow entry touched the denylist")
	}
	// HQ refuses an entry without a future expiry.
	if _, err := r.hq.AllowlistChange(ctx, allow("x", now)); err == nil {
		t.Fatal("allow entry expiring now accepted")
	}

	resyncs := make(chan wire.Command, 4)
	if err := r.b.Server().Subscribe(wire.CmdTopic("s1", "r1"), 9, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if c, err := wire.ParseCommand(wire.CmdTopic("s1", "r1"), pk.Payload); err == nil && c.Type == wire.CmdResync {
			resyncs <- c
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Seq 2 exists only in HQ's store: its delta was lost.
	if _, err := r.hqStore.AllowlistChange(ctx, store.ListChange{Add: []string{"acct-2"}, At: now, By: "analyst", Reason: "lost",
		Details: map[string]wire.ListDetail{"acct-2": {ExpiresAt: now.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	r.hqSkew.Add(int64(time.Minute)) // past HQ's resync coalescing
	v, _, _, err := r.hqStore.Allowlist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d3 := wire.Delta{Epoch: v.Epoch, Seq: 3, Add: []string{"acct-3"}, IssuedAt: now,
		Details: map[string]wire.ListDetail{"acct-3": {ExpiresAt: now.Add(time.Hour)}}}
	b3, err := bundle.SignAllowDelta(r.key, "EdDSA", "hq1", d3)
	if err != nil {
		t.Fatal(err)
	}
	// Signed as a denylist delta, the same payload is refused outright.
	asDeny, err := bundle.SignDelta(r.key, "EdDSA", "hq1", d3)
	if err != nil {
		t.Fatal(err)
	}
	r.sync.handle(ctx, fakeMsg{wire.AllowlistDelta, asDeny}, newOutbox(r.sync))
	if rf := r.sync.Refusal(); rf == nil || rf.Subject != wire.SubjectAllowlist || rf.Reason != string(bundle.WrongType) {
		t.Fatalf("refusal %+v", rf)
	}
	r.sync.handle(ctx, fakeMsg{wire.AllowlistDelta, b3}, newOutbox(r.sync))
	if r.st.Allowlisted("acct-3", now) {
		t.Fatal("a delta after a gap was applied")
	}
	select {
	case c := <-resyncs:
		if c.List != wire.SubjectAllowlist || c.HaveSeq != 1 {
			t.Fatalf("resync %+v, want the allowlist from seq 1", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resync request after an allowlist gap")
	}
	waitFor(t, "HQ's allowlist snapshot to heal the gap", func() bool {
		return r.st.AllowlistVersion().Seq == 2 && r.st.Allowlisted("acct-2", now) && r.st.Allowlisted("bulk-buyer", now)
	})

	// Two hours on, HQ sweeps the expired entries with an ordinary delta.
	r.hqSkew.Add(int64(2 * time.Hour))
	n, err := r.hq.ExpireAllowlist(ctx)
	if err != nil || n != 2 {
		t.Fatalf("expired %d, %v; want 2", n, err)
	}
	waitFor(t, "the sweep to reach the register", func() bool { return r.st.AllowlistVersion().Seq == 3 })
	if _, ok := r.st.AllowlistEntry("bulk-buyer", now); ok {
		t.Fatal("swept entry still at the register")
	}
	if _, accounts, _, _ := r.hqStore.Allowlist(ctx); len(accounts) != 0 {
		t.Fatalf("HQ still lists %v", accounts)
	}
}

// A register that connects after the change gets the allowlist from the
// retained snapshot; one of another store gets it too (the list is the
// chain's).
func TestAllowlistRetainedForLateRegisters(t *testing.T) {
	r := newRig(t)
	if _, err := r.hq.AllowlistChange(context.Background(), store.ListChange{Add: []string{"bulk-buyer"}, By: "analyst", Reason: "ID check",
		Details: map[string]wire.ListDetail{"bulk-buyer": {ExpiresAt: now.Add(time.Hour), Rule: "case:4"}}}); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "late.db"), state.Options{Store: "s2", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(Config{MQTT: r.auth.MQTT("tcp://"+r.addr, "s2/r1"), Store: "s2", Register: "r1", State: st,
		Trusted: r.trusted, Now: func() time.Time { return now },
		ActivePolicy: func() int64 { return 0 }, OnPolicy: func(*policy.Policy) {},
		Status: func() wire.Status { return wire.Status{} }})
	if err != nil {
		t.Fatal(err)
	}
	r.run(c.Run)
	waitFor(t, "the late register to get the allowlist snapshot", func() bool { return st.Allowlisted("bulk-buyer", now) })
	if d, _ := st.AllowlistEntry("bulk-buyer", now); d.Rule != "case:4" {
		t.Fatalf("entry %+v", d)
	}
	// Its status tells HQ's fleet view which allowlist it holds.
	waitFor(t, "HQ's fleet to show the late register's allowlist", func() bool {
		regs, err := r.hqStore.Fleet(context.Background())
		if err != nil {
			return false
		}
		for _, reg := range regs {
			if reg.Store == "s2" && reg.Status.AllowlistSeq == 1 && reg.Status.AllowlistEpoch != "" {
				return true
			}
		}
		return false
	})
}

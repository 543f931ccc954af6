package push

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

var now = time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC)

// startRegister runs a real agent-side sync client with its own state file.
func startRegister(t *testing.T, auth *embedtest.Auth, url, store, reg string, trusted []bundle.TrustedKey) *atomic.Int64 {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "agent.db"), state.Options{Store: store, Register: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	active := new(atomic.Int64)
	c, err := hqsync.New(hqsync.Config{
		MQTT: auth.MQTT(url, wire.Username(store, reg)), Store: store, Register: reg, State: st, Trusted: trusted,
		Now:          func() time.Time { return now },
		ActivePolicy: active.Load,
		OnPolicy:     func(p *policy.Policy) { active.Store(p.Metadata.Version) },
		Status: func() wire.Status {
			st := wire.Status{}
			if v := active.Load(); v > 0 {
				st.Policy = &wire.PolicyInfo{Name: "chain-default", Version: v}
			}
			return st
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return active
}

func TestPushReachesEveryRegister(t *testing.T) {
	b, auth := embedtest.Start(t, "hq-push", "s1/r1", "s1/r2", "s1/r3")
	pub, priv, _ := ed25519.GenerateKey(nil)
	trusted := []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}
	var regs []*atomic.Int64
	for i := 1; i <= 3; i++ {
		regs = append(regs, startRegister(t, auth, b.URL(), "s1", fmt.Sprintf("r%d", i), trusted))
	}
	p, err := policy.LoadFile("../../policy/testdata/chain-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Version = 7
	signed, err := bundle.SignPolicy(priv, "EdDSA", "hq1", p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var progress int
	rep, err := Run(ctx, Options{MQTT: auth.MQTT(b.URL(), PushUsername), Scope: "all", Bundle: signed, Version: 7, Expect: 3,
		Progress: func(Report) { progress++ }})
	if err != nil {
		t.Fatalf("push: %v (report %+v)", err, rep)
	}
	if len(rep.Applied) != 3 || progress == 0 {
		t.Fatalf("report %+v after %d progress calls, want 3 applied", rep, progress)
	}
	for i, v := range regs {
		if v.Load() != 7 {
			t.Errorf("register r%d runs v%d, want 7", i+1, v.Load())
		}
	}

	// Pushing an older version is refused by every register, and the push
	// says so instead of waiting for its timeout.
	p.Metadata.Version = 6
	older, err := bundle.SignPolicy(priv, "EdDSA", "hq1", p)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, Options{MQTT: auth.MQTT(b.URL(), PushUsername), Scope: "all", Bundle: older, Version: 6})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Refused) != 3 {
		t.Fatalf("rollback push: %+v, want 3 refusals", rep)
	}
	for id, reason := range rep.Refused {
		if reason != string(bundle.NotNewer) && reason != "already on newer v7" {
			t.Errorf("%s refused with %q, want not_newer", id, reason)
		}
	}
}

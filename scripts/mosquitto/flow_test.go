package mosquitto_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// TestFlowOverTLS runs the real programs' MQTT sides through Mosquitto with
// the shipped TLS/ACL configuration: HQ, policy push (hq-push) and a
// register authenticate with their certificates only; a policy push is applied and shows in status; a
// decision reaches HQ's store and is acked out of the register's outbox; a
// denylist change reaches the register.
func TestFlowOverTLS(t *testing.T) {
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	mosquittotest.GenCerts(t, certs, "-n", "127.0.0.1", "-q", "push", "-r", "s1/r1")
	addr, _ := mosquittotest.Start(t, bin, certs)
	now := time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC)
	tlsFor := func(name string) mqttconn.Config { return tlsClient(addr, certs, name) }
	pub, priv, _ := ed25519.GenerateKey(nil)
	trusted := []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}

	hqStore, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer hqStore.Close()
	svc, err := hq.New(hq.Config{MQTT: tlsFor("hq"), Store: hqStore,
		Signer: priv, SignerAlg: "EdDSA", SignerKID: "hq1", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, svc.Run)
	select {
	case <-svc.Ready():
	case <-time.After(wait):
		t.Fatal("HQ did not connect over TLS")
	}

	st, err := state.Open(filepath.Join(t.TempDir(), "agent.db"), state.Options{Store: "s1", Register: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var active atomic.Int64
	agent, err := hqsync.New(hqsync.Config{MQTT: tlsFor("reg.s1.r1"), Store: "s1", Register: "r1", State: st,
		Trusted: trusted, Now: func() time.Time { return now },
		ActivePolicy: active.Load,
		OnPolicy:     func(p *policy.Policy) { active.Store(p.Metadata.Version) },
		Status: func() wire.Status {
			var s wire.Status
			if v := active.Load(); v > 0 {
				s.Policy = &wire.PolicyInfo{Name: "chain-default", Version: v}
			}
			return s
		}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, agent.Run)

	p, err := policy.LoadFile("../../policy/testdata/chain-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Version = 3
	signed, err := bundle.SignPolicy(priv, "EdDSA", "hq1", p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	rep, err := push.Run(ctx, push.Options{MQTT: tlsFor("hq-push"), Scope: "all", Bundle: signed, Version: 3, Expect: 1})
	if err != nil || len(rep.Applied) != 1 || rep.Applied[0] != "s1/r1" {
		t.Fatalf("push over TLS: %+v, %v", rep, err)
	}

	req := &policy.Request{SaleID: "sale-1", Store: "s1", Register: "r1", At: now,
		Payment: policy.Payment{Kind: "pg1", Account: "acct-1"}}
	if _, err := st.Commit(ctx, state.Record{Request: req, ReplayKey: "pg1:01",
		Decision: &policy.Decision{Outcome: policy.Deny, Policy: policy.PolicyRef{Name: "chain-default", Version: 3}}}); err != nil {
		t.Fatal(err)
	}
	agent.Kick()
	waitUntil(t, "decision and alert stored at HQ and acked", func() bool {
		evs, _ := hqStore.Events(ctx, store.Query{Types: []event.Type{event.Decision, event.Alert}})
		depth, _ := st.OutboxStats()
		return len(evs) == 2 && depth == 0
	})

	if _, err := svc.DenylistChange(ctx, store.ListChange{Add: []string{"acct-stolen"}, By: "test", Reason: "stolen"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "denylist at the register", func() bool { return st.Denylisted("acct-stolen") })

	fleet, err := hqStore.Fleet(ctx)
	if err != nil || len(fleet) != 1 {
		t.Fatalf("fleet %+v, %v", fleet, err)
	}
	waitUntil(t, "status with policy v3 at HQ", func() bool {
		fleet, _ := hqStore.Fleet(ctx)
		return len(fleet) == 1 && fleet[0].Status.Policy != nil && fleet[0].Status.Policy.Version == 3
	})
}

// tlsClient is the MQTT configuration of the program holding certificate
// name (gen-certs.sh's file name without .crt) on the broker at addr.
func tlsClient(addr, certs, name string) mqttconn.Config {
	return mqttconn.Config{Broker: "ssl://" + addr, CAFile: filepath.Join(certs, "ca.crt"),
		CertFile: filepath.Join(certs, name+".crt"), KeyFile: filepath.Join(certs, name+".key"),
		MaxReconnect: time.Second}
}

// runUntilCleanup runs a program's Run until the test ends.
func runUntilCleanup(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * wait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

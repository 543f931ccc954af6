package mosquitto_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// TestStoreFactsOverTLS shares store facts between real registers (hqsync
// client, bbolt state with ShareFacts) through Mosquitto with the shipped
// TLS configuration and gen-certs.sh's per-register ACL: a token spent at
// s1/r1 is spent at s1/r2 and the other way round, and s2/r1, on the same
// broker, sees none of store s1's tokens.
func TestStoreFactsOverTLS(t *testing.T) {
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	mosquittotest.GenCerts(t, certs, "-n", "127.0.0.1", "-r", "s1/r1", "-r", "s1/r2", "-r", "s2/r1")
	addr, _ := mosquittotest.Start(t, bin, certs)
	now := time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC)

	type till struct {
		store, reg string
		st         *state.Store
		c          *hqsync.Client
	}
	open := func(store, reg string) till {
		st, err := state.Open(filepath.Join(t.TempDir(), store+"-"+reg+".db"),
			state.Options{Store: store, Register: reg, ShareFacts: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c, err := hqsync.New(hqsync.Config{MQTT: tlsClient(addr, certs, "reg."+store+"."+reg),
			Store: store, Register: reg, State: st, Now: func() time.Time { return now },
			ActivePolicy: func() int64 { return 0 }, OnPolicy: func(*policy.Policy) {},
			Status: func() wire.Status { return wire.Status{} }})
		if err != nil {
			t.Fatal(err)
		}
		runUntilCleanup(t, c.Run)
		return till{store, reg, st, c}
	}
	r1, r2, other := open("s1", "r1"), open("s1", "r2"), open("s2", "r1")
	for _, x := range []till{r1, r2, other} {
		// Reachable: the broker granted the store's facts subscription,
		// so a fact published from here on reaches every till allowed it.
		waitUntil(t, x.store+"/"+x.reg+"'s facts subscription over TLS", func() bool { return x.c.Peers().Reachable })
	}

	seq := 0
	spend := func(x till, key string) error {
		seq++
		req := &policy.Request{SaleID: key, Store: x.store, Register: x.reg, At: now.Add(time.Duration(seq) * time.Second),
			Lines:   []policy.Line{{JAN: "4901234567894", Category: "food", Quantity: 1, UnitPrice: 300}},
			Payment: policy.Payment{Kind: "pg1", Account: "acct-1"}}
		_, err := x.st.Commit(context.Background(), state.Record{Request: req, ReplayKey: key,
			Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "p", Version: 1}}})
		x.c.Kick()
		return err
	}

	if err := spend(r1, "pg1:shot-1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "r1's token spent at r2", func() bool { return r2.st.Seen("pg1:shot-1") })
	if err := spend(r2, "pg1:shot-1"); !errors.Is(err, state.ErrReplayed) {
		t.Fatalf("the screenshot spent at r1, committed again at r2: %v, want ErrReplayed", err)
	}
	if err := spend(r2, "pg1:shot-2"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "r2's token spent at r1", func() bool { return r1.st.Seen("pg1:shot-2") })
	// A later fact from r1: once r2 has it, the first one had long been
	// delivered to every subscriber allowed to read it.
	if err := spend(r1, "pg1:shot-3"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "r1's later token spent at r2", func() bool { return r2.st.Seen("pg1:shot-3") })
	for _, key := range []string{"pg1:shot-1", "pg1:shot-2", "pg1:shot-3"} {
		if other.st.Seen(key) {
			t.Errorf("s2/r1 saw store s1's token %s", key)
		}
	}
	if p := other.c.Peers(); !p.LastFactAt.IsZero() {
		t.Errorf("s2/r1 applied a fact: %+v", p)
	}
}

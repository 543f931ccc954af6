package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// startAgent runs a real register (agent.Agent, as posguard-agent runs
// it) connected to c's broker, trusting HQ's key, with the example policy
// as version 1, until the test ends or stop is called.
func startAgent(t *testing.T, c *consoletest.Console, identity string) (stop func()) {
	t.Helper()
	storeID, reg, _ := strings.Cut(identity, "/")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	example := string(policy.Example())
	pol := strings.Replace(example, "expiresAt: 2027-01-01T00:00:00Z", "expiresAt: 2099-01-01T00:00:00Z", 1)
	if pol == example {
		t.Fatal("example policy has no expiresAt line to replace")
	}
	a := c.Agent(identity)
	y := fmt.Sprintf(`store: %s
register: %s
state: %s
policy:
  bootstrap: %s
  trustedKeys:
    - {kid: %s, file: %s}
tokens:
  accountKeyFile: %s
http:
  listen: 127.0.0.1:0
`, storeID, reg, filepath.Join(dir, "state.db"), write("policy.yaml", pol), a.KID, a.TrustedKeyFile,
		write("account.key", "test-account-key-0123456789\n")) + a.HQYAML() + "  maxReconnect: 500ms\n"
	cfg, err := config.Load(write("agent.yaml", y))
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(cfg, agent.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", identity, err)
		}
	})
	t.Cleanup(stop)
	select {
	case <-ag.Ready():
	case err := <-done:
		t.Fatalf("agent %s did not start: %v", identity, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("agent %s did not start in 20s", identity)
	}
	return stop
}

// pushPolicy signs the example policy as version v (for the stores given;
// none: every store) with HQ's key and publishes it as `posguard policy
// push` does, waiting for want registers to apply it.
func pushPolicy(t *testing.T, c *consoletest.Console, v int64, stores []string, want int) {
	t.Helper()
	p, err := policy.Load(policy.Example())
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Version = v
	p.Metadata.IssuedAt = time.Now().Add(-time.Minute).Truncate(time.Second)
	p.Metadata.ExpiresAt = time.Now().Add(24 * time.Hour).Truncate(time.Second)
	p.Scope.Stores = stores
	b, err := bundle.SignPolicy(c.Signer, bundle.AlgEdDSA, consoletest.KID, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := push.Run(ctx, push.Options{MQTT: c.Auth.MQTT(c.BrokerURL, push.PushUsername), Scope: wire.ScopeAll,
		Bundle: b, Version: v, Expect: want})
	if err != nil || len(rep.Applied) < want {
		t.Fatalf("push v%d: %+v, %v", v, rep, err)
	}
}

// waitJS polls expr in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	browsertest.Get(t, ctx, what, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(25*time.Second)))
}

func sel(s string) string { return "document.querySelector(" + jsString(s) + ")" }

// The fleet page with real registers: the stores and a store's registers
// as they report, a push's rollout reaching 100 % live, then a push the
// other store's register refuses, listed with its reason.
func TestBrowserFleetRollout(t *testing.T) {
	regs := []string{"S001/R1", "S001/R2", "S002/R1"}
	consoletest.Stores(t, consoletest.Options{Registers: regs, Identities: []string{push.PushUsername}}, func(t *testing.T, c *consoletest.Console) {
		stops := map[string]func(){}
		for _, id := range regs {
			stops[id] = startAgent(t, c, id)
		}
		ctx := browsertest.Start(t, 1280, 900)
		browsertest.Run(t, ctx, "log in", c.Login("viewer"), chromedp.Navigate(c.URL+"/console/fleet"))
		waitJS(t, ctx, "both stores listed with their registers",
			sel(`[data-store="S001"] [data-testid="store-registers"]`)+`?.textContent === '2' && `+
				sel(`[data-store="S002"] [data-testid="store-online"]`)+`?.textContent === '1'`)
		browsertest.Run(t, ctx, "expand S001", chromedp.Click(css(`[data-store="S001"] [data-testid="store-toggle"]`)))
		waitJS(t, ctx, "S001's registers on v1",
			`[...document.querySelectorAll('[data-testid="registers"][data-store="S001"] [data-testid="register-row"]')]`+
				`.map(r => r.dataset.register + ':' + r.dataset.online + ':' + r.dataset.policyVersion).join(' ') === 'S001/R1:true:1 S001/R2:true:1'`)
		waitJS(t, ctx, "the stream is live", sel(`[data-testid="live"].on`)+` !== null`)

		pushPolicy(t, c, 2, nil, len(regs))
		waitJS(t, ctx, "the rollout of v2 at 100 %",
			sel(`[data-testid="rollout-percent"]`)+`?.dataset.percent === '100' && `+
				sel(`[data-testid="rollout-policy"]`)+`?.textContent.includes('v2')`)
		if got := text(t, ctx, `[data-testid="rollout-applied"]`); got != "適用済み 3" {
			t.Errorf("applied count reads %q", got)
		}
		waitJS(t, ctx, "S001's rows updated live to v2",
			`[...document.querySelectorAll('[data-testid="registers"][data-store="S001"] [data-testid="register-row"]')]`+
				`.every(r => r.dataset.policyVersion === '2')`)

		// Version 3 covers S001 only: S002/R1 refuses it as out of scope.
		pushPolicy(t, c, 3, []string{"S001"}, 2)
		waitJS(t, ctx, "the refusal listed with its reason",
			sel(`[data-testid="refusal"][data-register="S002/R1"] [data-testid="refusal-reason"]`)+`?.textContent === 'out_of_scope' && `+
				sel(`[data-testid="rollout-percent"]`)+`?.dataset.percent === '66'`)
		if got := text(t, ctx, `[data-testid="rollout-refused"]`); got != "拒否 1" {
			t.Errorf("refused count reads %q", got)
		}
		if got := text(t, ctx, `[data-testid="refusal"][data-register="S002/R1"]`); !strings.Contains(got, "not S002") {
			t.Errorf("refusal detail reads %q", got)
		}
		if strings.HasSuffix(t.Name(), "bolt") {
			consoletest.Screenshot(t, ctx, "fleet")
		}

		// A register shutting down shows offline in its store's row.
		stops["S002/R1"]()
		waitJS(t, ctx, "S002 counted offline",
			sel(`[data-store="S002"] [data-testid="store-offline"]`)+`?.textContent === '1' && `+
				sel(`[data-store="S002"] [data-testid="store-online"]`)+`?.textContent === '0'`)

		// The same page in English.
		browsertest.Run(t, ctx, "English", chromedp.Navigate(c.URL+"/console/fleet?lang=en"))
		waitJS(t, ctx, "the rollout in English",
			sel(`[data-testid="rollout-refused"]`)+`?.textContent === 'refused 1' && `+
				sel(`[data-testid="rollout-percent"]`)+`?.textContent === '66% applied'`)
	})
}

package console_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/policy/token"
)

// The register's policy and wallet: the example policy before scores, in
// which three cartons are denied (carton-cap), and the test issuer whose
// tokens it trusts.
const (
	policyFile = "../../policy/testdata/unscored.yaml"
	issuerKey  = "../../policy/testdata/test-issuer-ed25519.key.pem"
	pinHash    = "../../agent/testdata/pin-4711.bcrypt"
	carton     = "4901234000100" // tobacco-carton, 6,000 yen
)

// register is a real register agent of the console's HQ, deciding sales
// over its HTTP API as a POS would.
type register struct {
	url    string
	issuer crypto.Signer
}

func startRegister(t *testing.T, c *consoletest.Console, identity string) *register {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pol, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	// An expiry far ahead, so the test does not depend on its date.
	polText := strings.Replace(string(pol), "expiresAt: 2027-01-01T00:00:00Z", "expiresAt: 2099-01-01T00:00:00Z", 1)
	pin, err := os.ReadFile(pinHash)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agent(identity)
	st, reg, _ := strings.Cut(identity, "/")
	yaml := fmt.Sprintf(`store: %s
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
managerPINs: ['%s']
%s`, st, reg, filepath.Join(dir, "state.db"), write("policy.yaml", []byte(polText)), a.KID, a.TrustedKeyFile,
		write("account.key", []byte("console-test-account-key-0123\n")), strings.TrimSpace(string(pin)), a.HQYAML())
	cfg, err := config.Load(write("agent.yaml", []byte(yaml)))
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(cfg, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	select {
	case <-ag.Ready():
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not start in 20 s")
	}
	k, _, err := keyfile.Load(issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	r := &register{url: "http://" + ag.Addr(), issuer: k}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st agent.Status
		if r.get(t, "/v1/status", &st); st.HQ.Connected {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("the register did not connect to HQ in 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *register) get(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// decide sells lines to account's wallet token at the register.
func (r *register) decide(t *testing.T, account string, lines ...agent.CartLine) agent.Result {
	t.Helper()
	now := time.Now()
	tok, err := token.Mint(r.issuer, "EdDSA", "test-2026", token.Claims{Issuer: "posguard-wallet-test", Subject: account,
		IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(5 * time.Minute), ID: []byte(fmt.Sprintf("cti-%d", now.UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(agent.DecideRequest{Lines: lines, Token: tok})
	resp, err := http.Post(r.url+"/v1/decide", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res agent.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("decide: %s, %v", resp.Status, err)
	}
	return res
}

// A viewer watches the live feed; a real register denies a sale of three
// cartons; the deny appears in the feed with its reasons and masked
// account, and the delay from the register's answer to the row is logged.
// The feed's filter then keeps it or leaves it out as asked.
func TestBrowserAlertsLiveFeed(t *testing.T) {
	ctx := browsertest.Start(t, 1400, 900)
	consoletest.Stores(t, consoletest.Options{}, func(t *testing.T, c *consoletest.Console) {
		reg := startRegister(t, c, "S001/R1")
		// Earlier alerts of other stores, stored as ingest stores them:
		// the list under the live feed.
		var earlier []event.Event
		for i, out := range []policy.Outcome{policy.Review, policy.Deny, policy.Review} {
			ev := historyAlert(fmt.Sprintf("S00%d", 2+i%2), uint64(i+1), time.Now().Add(-time.Duration(3-i)*time.Hour), out)
			earlier = append(earlier, ev)
		}
		if _, err := c.Store.SaveEvents(context.Background(), earlier); err != nil {
			t.Fatal(err)
		}
		browsertest.Run(t, ctx, "log in", c.Login("viewer"))
		browsertest.Run(t, ctx, "open the alerts", chromedp.Navigate(c.URL+"/console/alerts"),
			chromedp.WaitVisible(css(`[data-testid="alerts-live"].al-live`)),
			chromedp.WaitVisible(css(`[data-testid="alerts-list"][data-loaded]`)))
		if ids := rowIDs(t, ctx); fmt.Sprint(ids) != fmt.Sprint([]string{earlier[2].ID, earlier[1].ID, earlier[0].ID}) {
			t.Fatalf("the list shows %v, want the earlier alerts newest first", ids)
		}

		res := reg.decide(t, "acct-crew-7731", agent.CartLine{JAN: carton, Quantity: 3})
		decided := time.Now()
		if res.Outcome != policy.Deny {
			t.Fatalf("the register decided %s, want deny", res.Outcome)
		}
		row := `[data-testid="alert-row"][data-outcome="deny"][data-id^="S001/R1/"]`
		browsertest.Run(t, ctx, "the deny in the live feed", chromedp.WaitVisible(css(row)))
		shownAt := browsertest.Get(t, ctx, "when it was shown", chromedp.Evaluate[int64](
			`Number(document.querySelector('`+row+`').dataset.shownAt)`))
		delay := time.UnixMilli(shownAt).Sub(decided)
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("%s: the register's deny was in the live feed %v after its answer (goal: 1 s; load average %s)",
			t.Name(), delay.Round(time.Millisecond), strings.Fields(string(load) + " ?")[0])
		// The machine is shared and loaded: the bound is looser than the
		// goal, the figure above is what counts.
		if delay > 10*time.Second {
			t.Errorf("the deny took %v to reach the live feed", delay)
		}
		reasons := text(t, ctx, row+` [data-testid="alert-reasons"]`)
		account := text(t, ctx, row+` [data-testid="alert-account"]`)
		where := text(t, ctx, row+` [data-testid="alert-where"]`)
		if !strings.Contains(reasons, "上限 2点") || account != "…7731" || where != "S001 / R1" {
			t.Fatalf("the row shows reasons %q, account %q, at %q", reasons, account, where)
		}
		if ids := rowIDs(t, ctx); len(ids) != 4 || !strings.HasPrefix(ids[0], "S001/R1/") {
			t.Fatalf("rows %v: want the live deny first, above the 3 earlier alerts", ids)
		}
		if strings.HasSuffix(t.Name(), "bolt") {
			browsertest.Run(t, ctx, "the flash ends", chromedp.Sleep(2500*time.Millisecond))
			consoletest.Screenshot(t, ctx, "alerts")
		}

		// Filtered to reviews, the list leaves the deny out; filtered to
		// the rule that denied it, after a reload (the list, not the
		// stream), it is there with its state.
		browsertest.Run(t, ctx, "filter reviews",
			chromedp.SetValue(css(`[data-testid="alerts-filter-outcome"]`), "review"),
			chromedp.Click(css(`[data-testid="alerts-apply"]`)),
			chromedp.WaitVisible(css(`[data-testid="alerts-list"][data-loaded]`)))
		if ids := rowIDs(t, ctx); fmt.Sprint(ids) != fmt.Sprint([]string{earlier[2].ID, earlier[0].ID}) {
			t.Errorf("reviews: rows %v, want %s and %s", ids, earlier[2].ID, earlier[0].ID)
		}
		browsertest.Run(t, ctx, "filter by rule", chromedp.Navigate(c.URL+"/console/alerts?rule=carton-cap"),
			chromedp.WaitVisible(css(row+` [data-testid="alert-state"]`)))
		if got := text(t, ctx, row+` [data-testid="alert-state"]`); got != "拒否済み" {
			t.Errorf("state %q, want 拒否済み", got)
		}
		// In English, the same templates' English.
		browsertest.Run(t, ctx, "in English", chromedp.Navigate(c.URL+"/console/alerts?lang=en&rule=carton-cap"),
			chromedp.WaitVisible(css(row+` [data-testid="alert-state"]`)))
		if got, reasons := text(t, ctx, row+` [data-testid="alert-state"]`), text(t, ctx, row+` [data-testid="alert-reasons"]`); got != "Denied" || !strings.Contains(reasons, "tobacco cartons 3 > limit 2") {
			t.Errorf("in English: state %q, reasons %q", got, reasons)
		}
	})
}

// The charts draw what the rollup holds: a real register's deny and a
// day of decisions of three stores stored as HQ's ingest stores them; the
// chart objects' data are the sums of those events.
func TestBrowserCharts(t *testing.T) {
	ctx := browsertest.Start(t, 1400, 1000)
	consoletest.Stores(t, consoletest.Options{}, func(t *testing.T, c *consoletest.Console) {
		reg := startRegister(t, c, "S001/R1")
		res := reg.decide(t, "acct-crew-7731", agent.CartLine{JAN: carton, Quantity: 3})
		if res.Outcome != policy.Deny {
			t.Fatalf("the register decided %s, want deny", res.Outcome)
		}
		evs, want := dayOfDecisions(time.Now())
		want.decisions, want.denies, want.yen = want.decisions+1, want.denies+1, want.yen+18000
		for _, f := range res.Decision.Rules {
			if f.Mode != "shadow" {
				want.rules[f.ID]++
			}
		}
		if _, err := c.Store.SaveEvents(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		// The register's decision reaches HQ through its outbox.
		deadline := time.Now().Add(20 * time.Second)
		for {
			hours, err := c.Store.HourlyStats(context.Background(), store.StatsQuery{Since: time.Now().Add(-time.Hour), Store: "S001"})
			if err != nil {
				t.Fatal(err)
			}
			if len(hours) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("HQ did not store the register's decision in 20 s")
			}
			time.Sleep(50 * time.Millisecond)
		}

		browsertest.Run(t, ctx, "log in", c.Login("viewer"))
		browsertest.Run(t, ctx, "open the charts", chromedp.Navigate(c.URL+"/console/charts"),
			chromedp.WaitVisible(css(`#page[data-loaded]`)))
		type drawn struct {
			Labels   []string    `json:"labels"`
			Datasets []string    `json:"datasets"`
			Sums     []float64   `json:"sums"`
			Data     [][]float64 `json:"data"`
		}
		charts := browsertest.Get(t, ctx, "the charts' data", chromedp.Evaluate[map[string]drawn](`
			Object.fromEntries([...document.querySelectorAll('canvas[data-testid]')].map(c => {
				const ch = Chart.getChart(c);
				return [c.dataset.testid, ch ? {
					labels: ch.data.labels.map(String),
					datasets: ch.data.datasets.map(d => d.label),
					sums: ch.data.datasets.map(d => d.data.reduce((a, b) => a + b, 0)),
					data: ch.data.datasets.map(d => d.data),
				} : null];
			}))`))
		hourly, byStore, yen, rules := charts["chart-hourly"], charts["chart-denies-by-store"], charts["chart-yen"], charts["chart-rules"]
		if len(hourly.Labels) != 24 || fmt.Sprint(hourly.Sums) != fmt.Sprint([]float64{float64(want.decisions), float64(want.reviews), float64(want.denies)}) {
			t.Errorf("per hour: %d hours, sums %v; want 24 hours, decisions %d, reviews %d, denies %d", len(hourly.Labels), hourly.Sums, want.decisions, want.reviews, want.denies)
		}
		var storeDenies float64
		for _, s := range byStore.Sums {
			storeDenies += s
		}
		if len(byStore.Datasets) != 3 || storeDenies != float64(want.denies) {
			t.Errorf("denies by store: series %v summing to %v; want 3 stores, %d", byStore.Datasets, storeDenies, want.denies)
		}
		if len(yen.Sums) != 1 || yen.Sums[0] != float64(want.yen) {
			t.Errorf("yen refused: %v, want %d", yen.Sums, want.yen)
		}
		if len(rules.Labels) != len(want.rules) || len(rules.Data) != 2 {
			t.Errorf("top rules %v %v; want %v", rules.Labels, rules.Data, want.rules)
		} else {
			for i, id := range rules.Labels {
				if rules.Data[0][i] != float64(want.rules[id]) || i > 0 && rules.Data[0][i] > rules.Data[0][i-1] {
					t.Errorf("top rules %v fired %v; want %v, most first", rules.Labels, rules.Data[0], want.rules)
					break
				}
			}
		}
		if strings.HasSuffix(t.Name(), "bolt") {
			consoletest.Screenshot(t, ctx, "charts")
		}
	})
}

// rowIDs are the alert rows' event ids, top first.
func rowIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return browsertest.Get(t, ctx, "rows", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="alert-row"]')].map(r => r.dataset.id)`))
}

// historyAlert is the alert of historyDecision.
func historyAlert(st string, seq uint64, at time.Time, out policy.Outcome) event.Event {
	ev := historyDecision(st, seq, at, out)
	ev.Type = event.Alert
	return ev
}

type tally struct {
	decisions, reviews, denies, yen int
	rules                           map[string]int
}

// dayOfDecisions is the last 24 hours of three stores' decisions before
// now, some reviewed or denied, and what they add up to.
func dayOfDecisions(now time.Time) ([]event.Event, tally) {
	w := tally{rules: map[string]int{}}
	var evs []event.Event
	stores := []string{"S001", "S002", "S003"}
	for h := 1; h <= 23; h++ {
		for i, st := range stores {
			n := 3 + (h*7+i*5)%9
			for k := 0; k < n; k++ {
				seq := uint64(h*1000 + i*100 + k + 1)
				at := now.Add(-time.Duration(h)*time.Hour + time.Duration(k)*time.Minute)
				out := policy.Allow
				switch {
				case (k+h+i)%7 == 0:
					out = policy.Deny
					w.denies++
					w.yen += 3 * 6000
					w.rules["carton-cap"]++
				case (k+h)%5 == 0:
					out = policy.Review
					w.reviews++
					w.rules["sale-over-10000"]++
				}
				w.decisions++
				evs = append(evs, historyDecision(st, seq, at, out))
			}
		}
	}
	return evs, w
}

// historyDecision is a decision of a register R9 at store st: a sale of
// a carton, two when reviewed (over 10,000 yen), three when denied (over
// the cap of two), to account acct-hist-SEQ.
func historyDecision(st string, seq uint64, at time.Time, out policy.Outcome) event.Event {
	saleID := fmt.Sprintf("hist-%d", seq)
	qty, fired := 1, []sale.Fired(nil)
	switch out {
	case policy.Deny:
		qty = 3
		fired = []sale.Fired{{ID: "carton-cap", Action: "deny", Mode: "enforce", Reason: "tobacco cartons 3 > limit 2",
			Reasons: []sale.Reason{{Code: sale.CodeCartQuantity, Value: 3, Limit: 2, Category: sale.Names{ID: "tobacco-carton", JA: "タバコ(カートン)", EN: "tobacco cartons"}}}}}
	case policy.Review:
		qty = 2
		fired = []sale.Fired{{ID: "sale-over-10000", Action: "review", Mode: "enforce", Reason: "sale 12,000 yen > limit 10,000 yen",
			Reasons: []sale.Reason{{Code: sale.CodeSaleAmount, Value: 12000, Limit: 10000, Unit: sale.UnitYen}}}}
	}
	return event.Event{ID: event.ID(st, "R9", "hist", seq), Seq: seq, Type: event.Decision,
		Store: st, Register: "R9", At: at, SaleID: saleID,
		Request: &sale.Request{SaleID: saleID, Store: st, Register: "R9", At: at,
			Lines:   []sale.Line{{JAN: carton, Category: "tobacco-carton", Quantity: qty, UnitPrice: 6000}},
			Payment: sale.Payment{Kind: "pg1", Account: fmt.Sprintf("acct-hist-%04d", seq)}},
		Decision: &sale.Decision{Outcome: out, Policy: sale.PolicyRef{Name: "chain-default", Version: 1}, Rules: fired}}
}

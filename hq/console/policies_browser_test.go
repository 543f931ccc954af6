package console_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
)

// signPolicy writes chain-default as version v with the tobacco score
// limit at limit yen, issued at at (valid 30 days), signed offline by key
// as "pol-1", and returns the bundle's path.
func signPolicy(t *testing.T, key ed25519.PrivateKey, dir string, v int64, limit int64, at time.Time) string {
	t.Helper()
	p, err := policy.LoadFile(filepath.Join("..", "..", "policy", "testdata", "chain-default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Rules {
		if p.Rules[i].ID == "tobacco-over-50000" {
			p.Rules[i].MaxAmount = &limit
		}
	}
	p.Metadata.Version, p.Metadata.IssuedAt, p.Metadata.ExpiresAt = v, at, at.Add(720*time.Hour)
	b, err := bundle.SignPolicy(key, bundle.AlgEdDSA, "pol-1", p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("chain-default-v%d.cose", v))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// recentSales stores n decisions of the last hour: ¥60,000 of tobacco
// cartons each, allowed at the time.
func recentSales(t *testing.T, c *consoletest.Console, n int) {
	t.Helper()
	var evs []event.Event
	base := time.Now().UTC().Add(-time.Hour)
	for i := 1; i <= n; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		sale := fmt.Sprintf("sale-%d", i)
		evs = append(evs, event.Event{ID: event.ID("S001", "R1", "e1", uint64(i)), Seq: uint64(i), Type: event.Decision,
			Store: "S001", Register: "R1", At: at, SaleID: sale,
			Request: &policy.Request{SaleID: sale, Store: "S001", Register: "R1", At: at,
				Payment: policy.Payment{Kind: "pg1", Account: fmt.Sprintf("acct-%d", i%5)},
				Lines:   []policy.Line{{JAN: "4901234567894", Category: "tobacco-carton", Quantity: 10, UnitPrice: 6000}}},
			Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "chain-default", Version: 1}}})
	}
	if _, err := c.Store.SaveEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// An admin uploads two signed versions; the table lists both with the
// admin's name, the diff shows the changed limit, and the report of a
// version opens. An analyst sees the versions but no upload, and the
// server refuses the analyst's push.
func TestBrowserPolicies(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	o := consoletest.Options{Configure: func(cfg *hq.Config) {
		cfg.PolicyKeys = []bundle.TrustedKey{{KID: "pol-1", Alg: bundle.AlgEdDSA, Public: pub}}
	}}
	ctx := browsertest.Start(t, 1280, 1000) // one browser for both stores; each login starts without cookies
	consoletest.Stores(t, o, func(t *testing.T, c *consoletest.Console) {
		dir := t.TempDir()
		// Issued at the same second: the diff is the version and the limit.
		at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
		v1, v2 := signPolicy(t, priv, dir, 1, 50000, at), signPolicy(t, priv, dir, 2, 60000, at)
		recentSales(t, c, 30)

		browsertest.Run(t, ctx, "admin opens Policies", c.Login("admin"),
			chromedp.Navigate(c.URL+"/console/policies"),
			chromedp.WaitVisible(css(`[data-testid="policy-upload-form"]`)),
			chromedp.WaitVisible(css(`[data-testid="policy-empty"]`)))
		for _, up := range []struct {
			version int
			path    string
		}{{1, v1}, {2, v2}} {
			browsertest.Run(t, ctx, fmt.Sprintf("upload v%d", up.version),
				chromedp.SetUploadFiles(css(`[data-testid="policy-file"]`), []string{up.path}),
				chromedp.Click(css(`[data-testid="policy-upload"]`)),
				chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid="policy-row"][data-version="%d"]`, up.version))))
			if got := text(t, ctx, `[data-testid="policy-status"]`); !strings.Contains(got, fmt.Sprintf("v%d（chain-default）を all に配信しました", up.version)) {
				t.Fatalf("after upload v%d the page says %q", up.version, got)
			}
		}
		rows := browsertest.Get(t, ctx, "rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="policy-row"]')]
			.map(r => r.dataset.version + ' ' + r.querySelector('[data-testid="policy-who"]').textContent)`))
		if strings.Join(rows, "|") != "2 admin (console)|1 admin (console)" {
			t.Fatalf("table rows %q, want v2 then v1, both by admin (console)", rows)
		}

		// The diff: by default the two newest, v1 → v2.
		browsertest.Run(t, ctx, "diff", chromedp.Click(css(`[data-testid="policy-diff-button"]`)),
			chromedp.WaitVisible(css(`[data-testid="policy-diff"] .diff-add`)))
		added := browsertest.Get(t, ctx, "added lines", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="policy-diff"] .diff-add')].map(s => s.textContent.trimEnd())`))
		removed := browsertest.Get(t, ctx, "removed lines", chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="policy-diff"] .diff-del')].map(s => s.textContent.trimEnd())`))
		if strings.Join(added, "|") != "+  version: 2|+    maxAmount: 60000" || strings.Join(removed, "|") != "-  version: 1|-    maxAmount: 50000" {
			t.Fatalf("diff added %q removed %q", added, removed)
		}

		// The report of v2 opens in the frame once made: every sale of the
		// window replayed.
		browsertest.Run(t, ctx, "report", chromedp.Click(css(`[data-testid="policy-report-2"]`)),
			chromedp.WaitVisible(css(`[data-testid="policy-report-frame"]`)),
			chromedp.Poll[chromedp.Void](`(() => { const d = document.querySelector('[data-testid="policy-report-frame"]').contentDocument;
				return d && d.body && !d.body.dataset.state && d.body.textContent.includes('chain-default') })()`))
		frame := browsertest.Get(t, ctx, "report text", chromedp.Evaluate[string](`document.querySelector('[data-testid="policy-report-frame"]').contentDocument.body.textContent`))
		if !strings.Contains(frame, "tobacco-over-50000") {
			t.Fatalf("the report does not list the policy's rules: %.500s", frame)
		}
		st, err := c.Service.PolicyReportStatus(context.Background(), 2)
		if err != nil || st.Sales != 30 {
			t.Fatalf("report of v2: %+v %v, want 30 sales replayed", st, err)
		}
		if t.Name() == "TestBrowserPolicies/bolt" {
			consoletest.Screenshot(t, ctx, "policies")
		}

		browsertest.Run(t, ctx, "analyst opens Policies", c.Login("analyst"),
			chromedp.Navigate(c.URL+"/console/policies"),
			chromedp.WaitVisible(css(`[data-testid="policy-row"][data-version="2"]`)))
		if n := browsertest.Get(t, ctx, "upload controls", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="policy-upload-form"], [data-testid="policy-file"]').length`)); n != 0 {
			t.Fatalf("the analyst sees %d upload controls", n)
		}
		if r := callAPI(t, ctx, "POST", "/v1/policies", `{bundle: 'aGVsbG8=', scope: 'all'}`); r.OK || r.Status != 403 {
			t.Fatalf("analyst's push: %+v, want 403", r)
		}
	})
}

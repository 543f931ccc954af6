package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/wire"
)

// The Lists page on both stores: an analyst adds a denylist entry with a
// reason and an expiry and removes an allow entry with a reason, the
// tables say who, when, why and until when, and both changes are in the
// audit trail with the analyst's name; a viewer sees the same lists with
// no add or remove control, and a change forced through the page's
// ctx.api is refused (403) and changes nothing.
func TestBrowserLists(t *testing.T) {
	consoletest.Stores(t, consoletest.Options{}, func(t *testing.T, c *consoletest.Console) {
		ctx := browsertest.Start(t, 1400, 1000)
		// An automatic entry from a chain rule and an allow entry from a
		// false positive, as HQ makes them.
		if _, err := c.Service.DenylistChange(t.Context(), store.ListChange{Add: []string{"crew-0"}, By: "hq", Reason: "chain rule account_stores",
			Details: map[string]wire.ListDetail{"crew-0": {ExpiresAt: time.Now().Add(24 * time.Hour), Rule: "account_stores", Reason: "3 stores in 30m"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Service.AllowlistChange(t.Context(), store.ListChange{Add: []string{"bulk-1"}, By: "ana (console)", Reason: "ID check at S014",
			Details: map[string]wire.ListDetail{"bulk-1": {ExpiresAt: time.Now().Add(720 * time.Hour), Rule: "case:3"}}}); err != nil {
			t.Fatal(err)
		}

		browsertest.Run(t, ctx, "analyst opens the lists", c.Login("analyst"),
			chromedp.Navigate(c.URL+"/console/lists"),
			chromedp.WaitVisible(css(`[data-testid="entry-crew-0"]`)))
		if row := text(t, ctx, `[data-testid="entry-crew-0"]`); !strings.Contains(row, "hq") || !strings.Contains(row, "account_stores") {
			t.Fatalf("automatic entry row %q", row)
		}
		// Adding needs a reason: without one nothing is sent.
		browsertest.Run(t, ctx, "add without a reason",
			chromedp.SendKeys(css(`[data-testid="add-account"]`), "crew-9"),
			chromedp.Click(css(`[data-testid="add-submit"]`)),
			chromedp.WaitVisible(css(`[data-testid="list-message"].error`)))
		if v, _, err := c.Store.Denylist(t.Context()); err != nil || v.Seq != 1 {
			t.Fatalf("a change without a reason was made: %+v %v", v, err)
		}
		browsertest.Run(t, ctx, "add with a reason",
			chromedp.SendKeys(css(`[data-testid="add-reason"]`), "店舗S002で盗難カードの使用"),
			chromedp.SetValue(css(`[data-testid="add-duration"]`), "168h"),
			chromedp.Click(css(`[data-testid="add-submit"]`)),
			chromedp.WaitVisible(css(`[data-testid="entry-crew-9"]`)))
		row := text(t, ctx, `[data-testid="entry-crew-9"]`)
		if !strings.Contains(row, "analyst (console)") || !strings.Contains(row, "店舗S002で盗難カードの使用") || strings.Contains(row, "無期限") {
			t.Fatalf("new entry row %q", row)
		}
		es, err := c.Store.DenylistEntries(t.Context(), store.ListQuery{Prefix: "crew-9"})
		if err != nil || len(es) != 1 || es[0].By != "analyst (console)" || es[0].Detail.ExpiresAt.Sub(es[0].Added) < 167*time.Hour {
			t.Fatalf("stored entry %+v %v", es, err)
		}

		browsertest.Run(t, ctx, "remove an allow entry with a reason",
			chromedp.Click(css(`[data-testid="tab-allowlist"]`)),
			chromedp.WaitVisible(css(`[data-testid="entry-bulk-1"]`)),
			chromedp.Click(css(`[data-testid="remove-bulk-1"]`)),
			chromedp.WaitVisible(css(`[data-testid="remove-reason"]`)),
			chromedp.SendKeys(css(`[data-testid="remove-reason"]`), "forged ID"),
			chromedp.Click(css(`[data-testid="remove-confirm"]`)),
			chromedp.WaitNotPresent(css(`[data-testid="entry-bulk-1"]`)))

		browsertest.Run(t, ctx, "audit trail",
			chromedp.Click(css(`[data-testid="tab-audit"]`)),
			chromedp.WaitVisible(css(`[data-testid="audit-row"]`)))
		waitJS(t, ctx, "the add in the audit trail", `[...document.querySelectorAll('[data-testid="audit-row"]')].some(r =>
			r.textContent.includes('analyst (console)') && r.textContent.includes('crew-9') && r.textContent.includes('店舗S002で盗難カードの使用'))`)
		// The allowlist's removal too, once HQ records allowlist changes as
		// events (the branch adding event.AllowlistChanged).
		if rec, err := c.Store.ListChanges(t.Context(), store.AuditQuery{Type: store.AllowlistChanged}); err != nil {
			t.Fatal(err)
		} else if len(rec) > 0 {
			waitJS(t, ctx, "the allowlist removal in the audit trail", `[...document.querySelectorAll('[data-testid="audit-row"]')].some(r =>
				r.textContent.includes('analyst (console)') && r.textContent.includes('bulk-1') && r.textContent.includes('forged ID'))`)
		}
		if es, err := c.Store.AllowlistEntries(t.Context(), store.ListQuery{}); err != nil || len(es) != 0 {
			t.Fatalf("allowlist after the removal %+v %v", es, err)
		}
		browsertest.Run(t, ctx, "lists page, Japanese", chromedp.Click(css(`[data-testid="tab-denylist"]`)),
			chromedp.WaitVisible(css(`[data-testid="entry-crew-9"]`)))
		if strings.HasSuffix(t.Name(), "bolt") {
			consoletest.Screenshot(t, ctx, "lists")
		}

		browsertest.Run(t, ctx, "lists page, English", chromedp.Navigate(c.URL+"/console/lists?lang=en"),
			chromedp.WaitVisible(css(`[data-testid="entry-crew-9"]`)))
		if tab, row := text(t, ctx, `[data-testid="tab-denylist"]`), text(t, ctx, `[data-testid="entry-crew-0"]`); tab != "Denylist" || !strings.Contains(row, "3 stores in 30m") {
			t.Fatalf("English tab %q, row %q", tab, row)
		}

		browsertest.Run(t, ctx, "viewer opens the lists", c.Login("viewer"),
			chromedp.Navigate(c.URL+"/console/lists"),
			chromedp.WaitVisible(css(`[data-testid="entry-crew-9"]`)),
			chromedp.WaitVisible(css(`[data-testid="list-readonly"]`)))
		n := browsertest.Get(t, ctx, "controls", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="add-form"], [data-testid^="remove-"]').length`))
		if n != 0 {
			t.Fatalf("a viewer sees %d add or remove controls", n)
		}
		for _, req := range []struct{ path, body string }{
			{"/v1/denylist", `{remove: ['crew-9'], reason: 'forced by a viewer'}`},
			{"/v1/allowlist", `{add: ['crew-9'], reason: 'forced by a viewer', allowFor: '24h'}`},
		} {
			if r := callAPI(t, ctx, "POST", req.path, req.body); r.OK || r.Status != 403 {
				t.Fatalf("a viewer's forced POST %s: %+v", req.path, r)
			}
		}
		if es, err := c.Store.DenylistEntries(t.Context(), store.ListQuery{Prefix: "crew-9"}); err != nil || len(es) != 1 {
			t.Fatalf("a viewer's change went through: %+v %v", es, err)
		}
	})
}

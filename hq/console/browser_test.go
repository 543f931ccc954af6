package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/browsertest"
)

type css = chromedp.CSS

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return browsertest.Get(t, ctx, "text of "+sel, chromedp.Text(css(sel)))
}

// apiResult is what a page's ctx.api call gave: the parsed answer, or the
// error's status and message.
type apiResult struct {
	OK     bool           `json:"ok"`
	Status int            `json:"status"`
	Error  string         `json:"error"`
	Body   map[string]any `json:"body"`
}

// callAPI runs ctx.api in the page, as a page module would: the session
// cookie and the CSRF header are the browser's own.
func callAPI(t *testing.T, ctx context.Context, method, path, body string) apiResult {
	t.Helper()
	js := `import('/console/static/console.js').then(m => m.makeCtx({}).api(` + jsString(method) + `, ` + jsString(path) + `, ` + body + `))
		.then(b => ({ok: true, body: b}), e => ({ok: false, status: e.status, error: e.message}))`
	return browsertest.Get(t, ctx, method+" "+path, chromedp.Evaluate[apiResult](js, chromedp.EvalAwaitPromise))
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// A wrong password is refused on the form, the right one shows the shell
// with the user and role; a viewer's denylist change through ctx.api is
// refused (403) while an analyst's is made and recorded with the user;
// logout ends the session, and the API refuses the old page's calls.
func TestBrowserLoginRolesLogout(t *testing.T) {
	ctx := browsertest.Start(t, 1280, 900)
	c := consoletest.Start(t, consoletest.Options{})

	browsertest.Run(t, ctx, "wrong password", c.LoginWith("analyst", "not-the-password"))
	if got := text(t, ctx, `[data-testid="login-error"]`); !strings.Contains(got, "パスワードが違います") {
		t.Fatalf("login error = %q", got)
	}
	browsertest.Run(t, ctx, "right password", c.Login("viewer"))
	if u, r := text(t, ctx, `[data-testid="user"]`), text(t, ctx, `[data-testid="role"]`); u != "viewer" || r != "閲覧者" {
		t.Fatalf("shell shows user %q role %q", u, r)
	}
	for _, p := range []string{"fleet", "alerts", "cases", "lists", "policies", "charts"} {
		browsertest.Run(t, ctx, "nav "+p, chromedp.WaitVisible(css(`[data-testid="nav-`+p+`"]`)))
	}

	denylist := `{add: ['acct-console-test'], reason: 'browser test'}`
	if r := callAPI(t, ctx, "POST", "/v1/denylist", denylist); r.OK || r.Status != 403 || !strings.Contains(r.Error, "needs analyst") {
		t.Fatalf("viewer's denylist change: %+v, want 403 needing analyst", r)
	}
	if r := callAPI(t, ctx, "GET", "/v1/denylist/status", "undefined"); !r.OK {
		t.Fatalf("viewer's read: %+v", r)
	}

	browsertest.Run(t, ctx, "analyst logs in", c.Login("analyst"))
	r := callAPI(t, ctx, "POST", "/v1/denylist", denylist)
	if !r.OK || r.Body["seq"] == nil {
		t.Fatalf("analyst's denylist change: %+v", r)
	}
	changes, err := c.Store.Events(context.Background(), store.Query{Types: []event.Type{event.DenylistChanged}})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Denylist.By != "analyst (console)" {
		t.Fatalf("recorded changes %+v, want one by \"analyst (console)\"", changes)
	}

	csrf := browsertest.Get(t, ctx, "CSRF token", chromedp.Evaluate[string](`JSON.parse(document.getElementById('console-config').textContent).csrf`))
	browsertest.Run(t, ctx, "logout", chromedp.Click(css(`[data-testid="logout"]`)),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)))
	// The old page's calls, token and all, are refused.
	status := browsertest.Get(t, ctx, "denylist change after logout", chromedp.Evaluate[int](`fetch('/v1/denylist', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-CSRF-Token': `+jsString(csrf)+`}, body: JSON.stringify({add: ['acct-2'], reason: 'x'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != 401 {
		t.Fatalf("denylist change after logout: HTTP %d, want 401", status)
	}
	browsertest.Run(t, ctx, "pages need a login again", chromedp.Navigate(c.URL+"/console/alerts"),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)))
}

// A page whose module is not there says so instead of staying blank; the
// language switch relabels the shell and is remembered.
func TestBrowserMissingPageAndLanguage(t *testing.T) {
	ctx := browsertest.Start(t, 1280, 900)
	c := consoletest.Start(t, consoletest.Options{})
	browsertest.Run(t, ctx, "login", c.Login("admin"),
		chromedp.Navigate(c.URL+"/console/charts?lang=en"),
		chromedp.WaitVisible(css(`[data-testid="page-missing"], [data-testid="page-error"], body[data-rendered]`)))
	if got := text(t, ctx, `[data-testid="nav-charts"]`); got != "Charts" {
		t.Errorf("English nav label %q", got)
	}
	browsertest.Run(t, ctx, "remembered", chromedp.Navigate(c.URL+"/console/fleet"), chromedp.WaitVisible(css(`[data-testid="nav"]`)))
	if got := text(t, ctx, `[data-testid="role"]`); got != "admin" {
		t.Errorf("role label after reload %q, want the English one", got)
	}
}

// The login page, in Japanese, for the README.
func TestBrowserLoginScreenshot(t *testing.T) {
	ctx := browsertest.Start(t, 1280, 800)
	c := consoletest.Start(t, consoletest.Options{})
	browsertest.Run(t, ctx, "login page", chromedp.Navigate(c.URL+"/console/login?lang=ja"),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)))
	consoletest.Screenshot(t, ctx, "login")
}

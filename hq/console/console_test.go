package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/hq/apiauth"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/internal/webassets"
)

// browser is an HTTP client that keeps cookies and does not follow
// redirects, so each answer can be checked.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login posts the form and returns the CSRF token of the page it leads to.
func login(t *testing.T, c *http.Client, base, user, password string) (int, string) {
	t.Helper()
	resp, err := c.PostForm(base+"/console/login", url.Values{"user": {user}, "password": {password}, "next": {"/console/cases"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, ""
	}
	if loc := resp.Header.Get("Location"); loc != "/console/cases" {
		t.Fatalf("login goes on to %q, want the page asked for", loc)
	}
	_, page := get(t, c, base+"/console/cases")
	m := regexp.MustCompile(`"csrf":"([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return resp.StatusCode, m[1]
}

func TestRoutes(t *testing.T) {
	c := consoletest.Start(t, consoletest.Options{})
	b := browser()
	for _, r := range []struct {
		path string
		code int
		loc  string
	}{
		{"/", 302, "/console/"},
		{"/console/", 302, "/console/fleet"},
		{"/console/fleet", 303, "/console/login?next=%2Fconsole%2Ffleet"},
		{"/console/no-such-page", 404, ""},
		{"/console/login", 200, ""},
		{"/healthz", 200, ""},
	} {
		resp, _ := get(t, b, c.URL+r.path)
		if resp.StatusCode != r.code || resp.Header.Get("Location") != r.loc {
			t.Errorf("GET %s: %d → %q, want %d → %q", r.path, resp.StatusCode, resp.Header.Get("Location"), r.code, r.loc)
		}
	}
	resp, js := get(t, b, c.URL+"/console/static/console.js")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(js, "export function makeCtx") {
		t.Errorf("console.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, chart := get(t, b, c.URL+"/console/static/vendor/chart.umd.min.js")
	if resp.StatusCode != 200 || !bytes.Equal([]byte(chart), webassets.ChartJS()) {
		t.Errorf("Chart.js: %d, %d bytes", resp.StatusCode, len(chart))
	}

	if code, _ := login(t, b, c.URL, "viewer", "wrong"); code != 401 {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if _, csrf := login(t, b, c.URL, "viewer", "viewer-password"); csrf == "" {
		t.Fatal("no CSRF token")
	}
	resp, page := get(t, b, c.URL+"/console/fleet?lang=en")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.Contains(page, `data-testid="user">viewer<`) || !strings.Contains(page, ">Fleet<") || !strings.Contains(page, `lang="en"`) {
		t.Fatalf("fleet page: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
	if _, page = get(t, b, c.URL+"/console/alerts"); !strings.Contains(page, `lang="en"`) {
		t.Error("the language was not remembered")
	}
	if resp, _ = get(t, b, c.URL+"/console/login"); resp.StatusCode != 303 {
		t.Errorf("login page with a session: %d, want a redirect to the console", resp.StatusCode)
	}
}

// A case moved by an analyst's session is recorded with the user's name,
// as is the denylist entry its confirmation makes; the viewer cannot move
// it. On bbolt and PostgreSQL.
func TestWritesRecordTheUser(t *testing.T) {
	consoletest.Stores(t, consoletest.Options{}, writesRecordTheUser)
}

func writesRecordTheUser(t *testing.T, c *consoletest.Console) {
	post := func(b *http.Client, csrf, path, body string) (int, string) {
		req, _ := http.NewRequest("POST", c.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(apiauth.CSRFHeader, csrf)
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	viewer, analyst := browser(), browser()
	_, vcsrf := login(t, viewer, c.URL, "viewer", "viewer-password")
	_, acsrf := login(t, analyst, c.URL, "analyst", "analyst-password")
	if code, body := post(viewer, vcsrf, "/v1/cases", `{"account":"acct-a","store":"S001","note":"crew"}`); code != 403 {
		t.Fatalf("viewer opens a case: %d %s", code, body)
	}
	code, body := post(analyst, acsrf, "/v1/cases", `{"account":"acct-a","store":"S001","note":"crew"}`)
	if code != 201 {
		t.Fatalf("analyst opens a case: %d %s", code, body)
	}
	var opened struct{ ID string }
	json.Unmarshal([]byte(body), &opened)
	if code, body := post(analyst, acsrf, "/v1/cases/"+opened.ID+"/confirm", `{"note":"CCTV"}`); code != 200 {
		t.Fatalf("analyst confirms: %d %s", code, body)
	}
	d, err := c.Service.Cases().Case(t.Context(), opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range d.History {
		if h.By != "analyst (console)" {
			t.Errorf("case history by %q, want \"analyst (console)\"", h.By)
		}
	}
}

// On loopback without users or tokens the console is open, as the local
// admin, with no login and no logout.
func TestOpenConsole(t *testing.T) {
	c := consoletest.Start(t, consoletest.Options{Open: true})
	resp, page := get(t, browser(), c.URL+"/console/policies")
	if resp.StatusCode != 200 || !strings.Contains(page, `data-testid="user">local<`) || !strings.Contains(page, `data-testid="open"`) || strings.Contains(page, `data-testid="logout"`) {
		t.Fatalf("open console: %d\n%s", resp.StatusCode, page)
	}
}

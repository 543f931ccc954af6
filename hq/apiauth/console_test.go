package apiauth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const perUser, perAddress = 3, 5

// consoleFixture is a Console over sato (analyst), tanaka (viewer) and
// suzuki (admin), and an API token per role.
type consoleFixture struct {
	auth   Authority
	tokens map[Role]string
	now    *atomic.Int64 // the sessions' clock, unix seconds
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	h := hashes()
	users, err := ParseUsers(strings.NewReader("sato analyst " + h["sato"] + "\ntanaka viewer " + h["tanaka"] + "\nsuzuki admin " + h["suzuki"] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := &consoleFixture{tokens: map[Role]string{}, now: &atomic.Int64{}}
	f.now.Store(1_700_000_000)
	var lines []string
	for _, r := range []Role{Read, Analyst, Admin} {
		tok, line, err := NewToken("bot-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[r] = tok
		lines = append(lines, line)
	}
	toks, err := Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	// Low limits: each counted attempt is a bcrypt comparison.
	f.auth = Authority{Tokens: toks, Console: NewConsole(users, ConsoleOptions{TTL: time.Hour, PerUser: perUser, PerAddress: perAddress,
		Now: func() time.Time { return time.Unix(f.now.Load(), 0) }})}
	return f
}

// login logs user in and returns the cookie and the CSRF token.
func (f *consoleFixture) login(t *testing.T, user string) (*http.Cookie, string) {
	t.Helper()
	w := httptest.NewRecorder()
	s, err := f.auth.Console.Login(w, httptest.NewRequest("POST", "/console/login", nil), user, user+"-password")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return w.Result().Cookies()[0], s.CSRF
}

// Each role against a route of each role, by session and by token: a
// role allows its own routes and those below it, nothing above.
func TestRoles(t *testing.T) {
	f := newConsoleFixture(t)
	who := func(w http.ResponseWriter, r *http.Request) {
		p, _ := Caller(r)
		io.WriteString(w, p.String())
	}
	users := map[Role]string{Read: "tanaka", Analyst: "sato", Admin: "suzuki"}
	for _, caller := range []Role{Read, Analyst, Admin} {
		cookie, csrf := f.login(t, users[caller])
		for _, need := range []Role{Read, Analyst, Admin} {
			want := http.StatusOK
			if (caller == Read && need != Read) || (caller == Analyst && need == Admin) {
				want = http.StatusForbidden
			}
			h := f.auth.Require(need, http.HandlerFunc(who))
			for _, via := range []string{"console", "token"} {
				r := httptest.NewRequest("POST", "/v1/x", nil)
				name := users[caller] + " (console)"
				if via == "console" {
					r.AddCookie(cookie)
					r.Header.Set(CSRFHeader, csrf)
				} else {
					r.Header.Set("Authorization", "Bearer "+f.tokens[caller])
					name = "bot-" + string(caller) + " (token)"
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != want {
					t.Errorf("%s %s on a %s route: %d, want %d (%s)", caller, via, need, w.Code, want, w.Body)
				}
				if want == http.StatusOK && w.Body.String() != name {
					t.Errorf("%s %s: caller %q, want %q", caller, via, w.Body, name)
				}
			}
		}
	}
}

// A session's unsafe requests need its CSRF token; safe ones do not; a
// token caller never does; an ended or expired session is no caller.
func TestConsoleCSRFAndExpiry(t *testing.T) {
	f := newConsoleFixture(t)
	ok := f.auth.Require(Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cookie, csrf := f.login(t, "sato")
	_, otherCSRF := f.login(t, "tanaka")
	call := func(method, token string, c *http.Cookie, bearer string) int {
		r := httptest.NewRequest(method, "/v1/x", nil)
		if c != nil {
			r.AddCookie(c)
		}
		if token != "" {
			r.Header.Set(CSRFHeader, token)
		}
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		w := httptest.NewRecorder()
		ok.ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		name, method, token string
		cookie              *http.Cookie
		bearer              string
		want                int
	}{
		{"GET without token", "GET", "", cookie, "", 200},
		{"POST with the token", "POST", csrf, cookie, "", 200},
		{"POST without token", "POST", "", cookie, "", 403},
		{"DELETE with another session's token", "DELETE", otherCSRF, cookie, "", 403},
		{"PUT with a wrong token", "PUT", csrf + "x", cookie, "", 403},
		{"bearer with the cookie, no CSRF", "POST", "", cookie, f.tokens[Read], 200},
		{"unknown cookie", "GET", "", &http.Cookie{Name: ConsoleCookie, Value: "forged"}, "", 401},
		{"nothing", "GET", "", nil, "", 401},
	} {
		if got := call(c.method, c.token, c.cookie, c.bearer); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	f.now.Add(int64(2 * time.Hour / time.Second))
	if got := call("GET", "", cookie, ""); got != 401 {
		t.Errorf("expired session: %d, want 401", got)
	}
	cookie, _ = f.login(t, "sato")
	r := httptest.NewRequest("POST", "/console/logout", nil)
	r.AddCookie(cookie)
	f.auth.Console.Logout(httptest.NewRecorder(), r)
	if got := call("GET", "", cookie, ""); got != 401 {
		t.Errorf("after logout: %d, want 401", got)
	}
}

// Open lets everyone through as the local admin; with users but no
// tokens file a bearer token is refused with a message that says why.
func TestAuthorityOpenAndConsoleOnly(t *testing.T) {
	h := func(a Authority) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/x", nil)
		r.Header.Set("Authorization", "Bearer pgt_x")
		a.Require(Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, _ := Caller(r); p != Open {
				t.Errorf("open caller %+v", p)
			}
		})).ServeHTTP(w, r)
		return w.Code
	}
	if got := h(Authority{}); got != 200 {
		t.Errorf("open: %d", got)
	}
	f := newConsoleFixture(t)
	if got := h(Authority{Console: f.auth.Console}); got != 401 {
		t.Errorf("console only, bearer: %d, want 401", got)
	}
}

// Guesses are limited per user (unknown names sharing one count) and per
// address, and concurrent guesses cannot overrun either limit.
func TestLoginLimits(t *testing.T) {
	f := newConsoleFixture(t)
	c := f.auth.Console
	try := func(addr, user, pw string) error {
		r := httptest.NewRequest("POST", "/console/login", nil)
		r.RemoteAddr = addr + ":4711"
		_, err := c.Login(httptest.NewRecorder(), r, user, pw)
		return err
	}
	// One user's password guessed from many addresses at once: exactly
	// perUser are checked, the rest refused before bcrypt.
	var checked, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range perUser + 5 {
		wg.Go(func() {
			switch err := try(fmt.Sprintf("10.0.0.%d", i), "sato", "guess"); err {
			case ErrWrongLogin:
				checked.Add(1)
			case ErrTooManyLogins:
				refused.Add(1)
			default:
				t.Errorf("guess: %v", err)
			}
		})
	}
	wg.Wait()
	if checked.Load() != perUser || refused.Load() != 5 {
		t.Fatalf("%d guesses checked, %d refused; want %d and 5", checked.Load(), refused.Load(), perUser)
	}
	if err := try("10.0.1.1", "sato", "sato-password"); err != ErrTooManyLogins {
		t.Fatalf("right password while locked: %v", err)
	}
	if err := try("10.0.1.1", "tanaka", "tanaka-password"); err != nil {
		t.Fatalf("another user is unaffected: %v", err)
	}
	// The window passes.
	f.now.Add(int64(LoginWindow / time.Second))
	if err := try("10.0.1.1", "sato", "sato-password"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Unknown names share one count, so made-up names neither fill the
	// table nor get a count each.
	f.now.Add(int64(LoginWindow / time.Second))
	for i := range perUser {
		if err := try(fmt.Sprintf("10.0.2.%d", i), fmt.Sprintf("nobody-%d", i), "x"); err != ErrWrongLogin {
			t.Fatalf("unknown name %d: %v", i, err)
		}
	}
	if err := try("10.0.2.99", "nobody-else", "x"); err != ErrTooManyLogins {
		t.Fatalf("unknown names beyond the shared count: %v", err)
	}
	// One address guessing many users.
	f.now.Add(int64(LoginWindow / time.Second))
	for i := range perAddress {
		user := []string{"sato", "tanaka", "suzuki"}[i%3]
		if err := try("192.0.2.7", user, "wrong"); err != ErrWrongLogin {
			t.Fatalf("address guess %d: %v", i, err)
		}
	}
	if err := try("192.0.2.7", "suzuki", "suzuki-password"); err != ErrTooManyLogins {
		t.Fatalf("address beyond its count: %v", err)
	}
}

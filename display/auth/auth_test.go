package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// request carries the cookies a response set, as a browser would.
func request(from *httptest.ResponseRecorder) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range from.Result().Cookies() {
		r.AddCookie(c)
	}
	return r
}

func TestSessionsWithoutLogin(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s, err := m.Ensure(w, httptest.NewRequest("GET", "/", nil))
	if err != nil || !s.Authed || s.CSRF == "" {
		t.Fatalf("Ensure = %+v, %v", s, err)
	}
	r := request(w)
	if !m.CheckCSRF(r, s.CSRF) || m.CheckCSRF(r, s.CSRF+"x") || m.CheckCSRF(r, "") {
		t.Fatal("CSRF check wrong")
	}
	// The token of one session is useless with another.
	w2 := httptest.NewRecorder()
	s2, _ := m.Ensure(w2, httptest.NewRequest("GET", "/", nil))
	if m.CheckCSRF(request(w2), s.CSRF) || s2.ID == s.ID {
		t.Fatal("sessions share tokens")
	}
}

func TestLoginAndExpiry(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	c := &clock{t: time.Unix(1_562_000_000, 0)}
	m, err := New(Options{PasswordHash: string(hash), TTL: time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	pre, _ := m.Ensure(w, httptest.NewRequest("GET", "/", nil))
	if pre.Authed {
		t.Fatal("session authed before login")
	}
	if _, err := m.Login(httptest.NewRecorder(), request(w), "nope"); err != ErrWrongPassword {
		t.Fatalf("wrong password: %v", err)
	}
	w2 := httptest.NewRecorder()
	s, err := m.Login(w2, request(w), "pw")
	if err != nil || !s.Authed || s.ID == pre.ID {
		t.Fatalf("login = %+v, %v (want a new authed session)", s, err)
	}
	if _, ok := m.Get(request(w)); ok {
		t.Fatal("pre-login session survived login (fixation)")
	}
	r := request(w2)
	c.t = c.t.Add(59 * time.Minute)
	if _, ok := m.Get(r); !ok {
		t.Fatal("session expired early")
	}
	c.t = c.t.Add(59 * time.Minute) // use above extended it
	if _, ok := m.Get(r); !ok {
		t.Fatal("use did not extend the session")
	}
	c.t = c.t.Add(61 * time.Minute)
	if _, ok := m.Get(r); ok {
		t.Fatal("idle session did not expire")
	}
}

func TestNewRejectsBadHash(t *testing.T) {
	for _, h := range []string{"secret", "$2a$10$short", "$argon2id$v=19$..."} {
		if _, err := New(Options{PasswordHash: h}); err == nil {
			t.Errorf("New accepted hash %q", h)
		}
	}
}

func TestSessionTableBounded(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	m, _ := New(Options{PasswordHash: string(hash)})
	for i := 0; i < MaxSessions+50; i++ {
		// What Login does after the password check, without a bcrypt
		// comparison each time.
		if _, err := m.start(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.table.Len(); n > MaxSessions {
		t.Fatalf("%d sessions, bound %d", n, MaxSessions)
	}
}

// Requests without a cookie store nothing, with or without a login, so a
// flood of them cannot evict the manager's session.
func TestCookielessRequestsStoreNothing(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, o := range []Options{{}, {PasswordHash: string(hash)}} {
		m, _ := New(o)
		w := httptest.NewRecorder()
		mgr, err := m.Login(w, httptest.NewRequest("POST", "/login", nil), "pw")
		if err != nil {
			t.Fatal(err)
		}
		for range MaxSessions + 100 {
			flood := httptest.NewRecorder()
			s, err := m.Ensure(flood, httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if o.PasswordHash != "" && (s.Authed || len(flood.Result().Cookies()) != 0) {
				t.Fatalf("cookie-less request got session %+v, cookies %v", s, flood.Result().Cookies())
			}
		}
		if n := m.table.Len(); n > 1 {
			t.Errorf("login %v: %d stored sessions after the flood, want at most the login's", m.LoginRequired(), n)
		}
		if s, ok := m.Get(request(w)); !ok || s.ID != mgr.ID || !m.CheckCSRF(request(w), mgr.CSRF) {
			t.Errorf("login %v: the manager's session did not survive the flood", m.LoginRequired())
		}
	}
}

// Without a login the session is the cookie alone: a cookie the display did
// not make (wrong size) is no session, and its CSRF token is worthless.
func TestStatelessSessionRefusesForgedCookies(t *testing.T) {
	m, _ := New(Options{})
	for _, v := range []string{"x", "AAAA", "not base64 at all!"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
		if s, ok := m.Get(r); ok {
			t.Errorf("cookie %q accepted as %+v", v, s)
		}
	}
	other, _ := New(Options{})
	w := httptest.NewRecorder()
	s, _ := other.Ensure(w, httptest.NewRequest("GET", "/", nil))
	if got, ok := m.Get(request(w)); !ok || m.CheckCSRF(request(w), s.CSRF) || got.CSRF == s.CSRF {
		t.Error("another display's CSRF token is accepted (the key must be per display)")
	}
}

// A PIN counts against its device until the register says it was right;
// a wrong one keeps counting for the window; other devices are unaffected.
func TestPINGuard(t *testing.T) {
	t0 := time.Unix(0, 0)
	g := NewPINGuard(2, time.Minute)
	type step struct {
		op      string // send | right | wrong
		source  string
		review  string
		at      time.Duration
		allowed bool
	}
	steps := []step{
		{"send", "dev1", "r1", 0, true},
		{"right", "", "r1", 0, false}, // given back
		{"send", "dev1", "r2", time.Second, true},
		{"wrong", "", "r2", 0, false}, // keeps counting
		{"send", "dev1", "r3", 2 * time.Second, true},
		{"send", "dev1", "r3", 3 * time.Second, false}, // two unanswered-or-wrong in the window
		{"send", "dev2", "r3", 3 * time.Second, true},  // another device
		{"right", "", "r3", 0, false},                  // dev2's PIN was right: dev2 gets it back, dev1 does not
		{"send", "dev2", "r4", 4 * time.Second, true},
		{"send", "dev2", "r4", 5 * time.Second, true},
		{"send", "dev1", "r4", 30 * time.Second, false},
		{"send", "dev1", "r4", 62 * time.Second, true}, // the wrong PIN at 1s left the window
	}
	for i, s := range steps {
		switch s.op {
		case "send":
			if got := g.Send(s.source, s.review, t0.Add(s.at)); got != s.allowed {
				t.Errorf("step %d: Send(%s, %s) at %v = %v, want %v", i, s.source, s.review, s.at, got, s.allowed)
			}
		case "right":
			g.Right(s.review)
		case "wrong":
			g.Wrong(s.review)
		}
	}
}

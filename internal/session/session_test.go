package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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

func TestStartGetEnd(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	tab := New[string](Options{Cookie: "sid", TTL: time.Hour, Now: c.now})
	w := httptest.NewRecorder()
	s, err := tab.Start(w, httptest.NewRequest("POST", "/login", nil), "sato")
	if err != nil {
		t.Fatal(err)
	}
	ck := w.Result().Cookies()[0]
	if ck.Name != "sid" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" {
		t.Fatalf("cookie %+v", ck)
	}
	got, ok := tab.Get(request(w))
	if !ok || got.Data != "sato" || got.CSRF != s.CSRF || got.ID == got.CSRF {
		t.Fatalf("Get = %+v, %v", got, ok)
	}
	if !got.CSRFMatches(s.CSRF) || got.CSRFMatches("") || got.CSRFMatches(s.CSRF+"x") {
		t.Fatal("CSRFMatches wrong")
	}
	// Use extends the life; an hour of silence ends it.
	c.t = c.t.Add(50 * time.Minute)
	if _, ok := tab.Get(request(w)); !ok {
		t.Fatal("session gone before its TTL")
	}
	c.t = c.t.Add(50 * time.Minute)
	if _, ok := tab.Get(request(w)); !ok {
		t.Fatal("use did not extend the session")
	}
	c.t = c.t.Add(61 * time.Minute)
	if _, ok := tab.Get(request(w)); ok {
		t.Fatal("expired session still live")
	}
	if tab.Len() != 0 {
		t.Fatal("expired session kept")
	}

	w = httptest.NewRecorder()
	tab.Start(w, httptest.NewRequest("POST", "/login", nil), "sato")
	out := httptest.NewRecorder()
	tab.End(out, request(w))
	if _, ok := tab.Get(request(w)); ok {
		t.Fatal("session live after End")
	}
	if ck := out.Result().Cookies()[0]; ck.MaxAge >= 0 || ck.Value != "" {
		t.Fatalf("End did not clear the cookie: %+v", ck)
	}
}

// A login replaces the session the browser carried: one fixed by an
// attacker before the login is worthless after it.
func TestStartReplacesTheOldSession(t *testing.T) {
	tab := New[string](Options{Cookie: "sid"})
	w := httptest.NewRecorder()
	old, _ := tab.Start(w, httptest.NewRequest("POST", "/login", nil), "mallory")
	w2 := httptest.NewRecorder()
	s, _ := tab.Start(w2, request(w), "sato")
	if s.ID == old.ID || tab.Len() != 1 {
		t.Fatalf("old session kept: %d sessions", tab.Len())
	}
	if _, ok := tab.Get(request(w)); ok {
		t.Fatal("the fixed session still works")
	}
}

func TestTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	tab := New[int](Options{Cookie: "sid", Max: 10, Now: c.now})
	first := httptest.NewRecorder()
	tab.Start(first, httptest.NewRequest("POST", "/", nil), 0)
	for i := range 25 {
		c.t = c.t.Add(time.Second)
		tab.Start(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), i)
	}
	if tab.Len() > 10 {
		t.Fatalf("%d sessions, bound 10", tab.Len())
	}
	if _, ok := tab.Get(request(first)); ok {
		t.Fatal("the oldest session survived eviction")
	}
}

func TestSecureOnTLS(t *testing.T) {
	tab := New[int](Options{Cookie: "sid"})
	r := httptest.NewRequest("POST", "https://hq.example/login", nil)
	if r.TLS == nil {
		t.Fatal("httptest gave no TLS state for https")
	}
	w := httptest.NewRecorder()
	tab.Start(w, r, 1)
	if !w.Result().Cookies()[0].Secure {
		t.Fatal("cookie over TLS not Secure")
	}
}

func TestEndAll(t *testing.T) {
	tab := New[string](Options{Cookie: "sid"})
	for _, u := range []string{"a", "b", "a"} {
		tab.Start(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), u)
	}
	tab.EndAll(func(u string) bool { return u == "a" })
	if tab.Len() != 1 {
		t.Fatalf("%d sessions left, want b's", tab.Len())
	}
}

// Package session keeps the logged-in sessions of a web page (the store
// display, the HQ console): random ids in an HttpOnly, SameSite=Strict
// cookie, a random CSRF token per session for state-changing requests, a
// sliding expiry, and a bounded table. Only a login adds a session, and
// logins are rate limited, so requests without one can never fill the
// table and evict a user's.
package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// DefaultMax bounds a table whose Options.Max is 0.
const DefaultMax = 1024

// DefaultTTL is how long a session lives without use when Options.TTL is 0:
// a shift.
const DefaultTTL = 12 * time.Hour

// TokenBytes is the size of session ids and CSRF tokens.
const TokenBytes = 32

// Session is one logged-in session and what the login bound to it.
type Session[T any] struct {
	ID      string
	CSRF    string
	Expires time.Time
	Data    T
}

// Options configure a Table.
type Options struct {
	Cookie string        // the cookie's name (required)
	TTL    time.Duration // lifetime without use; 0 means DefaultTTL
	Max    int           // bound on the table; 0 means DefaultMax
	// Secure marks the cookie Secure; it is also set on any request that
	// came over TLS.
	Secure bool
	Now    func() time.Time // nil means time.Now
}

// Table holds the sessions. Safe for concurrent use.
type Table[T any] struct {
	o        Options
	mu       sync.Mutex
	sessions map[string]Session[T]
}

// New makes an empty table.
func New[T any](o Options) *Table[T] {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Table[T]{o: o, sessions: map[string]Session[T]{}}
}

// Cookie is the name of the table's cookie.
func (t *Table[T]) Cookie() string { return t.o.Cookie }

// Len is the number of sessions held (live or not yet evicted).
func (t *Table[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// Get returns the live session of a request and extends its life.
func (t *Table[T]) Get(r *http.Request) (Session[T], bool) {
	c, err := r.Cookie(t.o.Cookie)
	if err != nil || c.Value == "" {
		return Session[T]{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[c.Value]
	if !ok {
		return Session[T]{}, false
	}
	now := t.o.Now()
	if !now.Before(s.Expires) {
		delete(t.sessions, c.Value)
		return Session[T]{}, false
	}
	s.Expires = now.Add(t.o.TTL)
	t.sessions[c.Value] = s
	return s, true
}

// Start stores a fresh session holding data and sets its cookie; the
// request's previous session, if any, ends (a session fixed before a login
// is worthless after it).
func (t *Table[T]) Start(w http.ResponseWriter, r *http.Request, data T) (Session[T], error) {
	id, err := RandomToken()
	if err != nil {
		return Session[T]{}, err
	}
	csrf, err := RandomToken()
	if err != nil {
		return Session[T]{}, err
	}
	now := t.o.Now()
	s := Session[T]{ID: id, CSRF: csrf, Expires: now.Add(t.o.TTL), Data: data}
	t.mu.Lock()
	if c, err := r.Cookie(t.o.Cookie); err == nil {
		delete(t.sessions, c.Value)
	}
	t.evict(now)
	t.sessions[id] = s
	t.mu.Unlock()
	http.SetCookie(w, t.cookie(r, id, 0))
	return s, nil
}

// End ends the request's session and clears its cookie.
func (t *Table[T]) End(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(t.o.Cookie); err == nil {
		t.mu.Lock()
		delete(t.sessions, c.Value)
		t.mu.Unlock()
	}
	http.SetCookie(w, t.cookie(r, "", -1))
}

// EndAll ends every session for which drop is true (a user removed, a
// role changed).
func (t *Table[T]) EndAll(drop func(T) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, s := range t.sessions {
		if drop(s.Data) {
			delete(t.sessions, id)
		}
	}
}

// CSRFMatches reports, in constant time, whether token is the session's
// CSRF token.
func (s Session[T]) CSRFMatches(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) == 1
}

// evict drops expired sessions and, if still full, the one closest to
// expiry. Must hold mu.
func (t *Table[T]) evict(now time.Time) {
	if len(t.sessions) < t.o.Max {
		return
	}
	var oldest string
	var oldestExp time.Time
	for id, s := range t.sessions {
		if !now.Before(s.Expires) {
			delete(t.sessions, id)
			continue
		}
		if oldest == "" || s.Expires.Before(oldestExp) {
			oldest, oldestExp = id, s.Expires
		}
	}
	if len(t.sessions) >= t.o.Max {
		delete(t.sessions, oldest)
	}
}

// SetCookie sets the table's cookie to value (a stateless session of the
// caller's own, see display/auth).
func (t *Table[T]) SetCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, t.cookie(r, value, 0))
}

func (t *Table[T]) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     t.o.Cookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   t.o.Secure || (r != nil && r.TLS != nil),
		SameSite: http.SameSiteStrictMode,
	}
}

// RandomToken is TokenBytes from crypto/rand, base64url.
func RandomToken() (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

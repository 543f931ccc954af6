// Package auth guards the display page: sessions in a cookie, an optional
// store password (a bcrypt hash from the configuration), a CSRF token per
// session for state-changing requests, and per-client rate limits.
//
// Every page gets a session, login or not, because even a display bound to
// 127.0.0.1 can be posted to by any web page open in the same browser; the
// CSRF token is what stops that. Only a login stores a session: without a
// password the session lives in its cookie alone (the CSRF token is a MAC
// of its id), and with one a visitor who has not logged in gets none. So
// no number of cookie-less requests can fill the table and evict the
// manager's session.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// CookieName is the session cookie.
const CookieName = "posguard_display"

// MaxSessions bounds the table of logged-in sessions; the oldest are
// evicted first. Only logins (rate limited per client) add to it.
const MaxSessions = 1024

// ErrWrongPassword is returned by Login for a bad password.
var ErrWrongPassword = errors.New("wrong password")

// Session is what a request carries.
type Session struct {
	ID      string
	CSRF    string
	Authed  bool      // logged in, or no login configured
	Expires time.Time // zero without a login: the cookie lives as long as the browser session
}

// Manager holds the sessions. Safe for concurrent use.
type Manager struct {
	hash   []byte // nil: no login required
	ttl    time.Duration
	secure bool
	now    func() time.Time
	// key makes the CSRF tokens of the stateless sessions used without
	// a login.
	key []byte

	mu       sync.Mutex
	sessions map[string]Session
}

// Options configure a Manager.
type Options struct {
	// PasswordHash is a bcrypt hash; empty means no login (loopback only).
	PasswordHash string
	// TTL is how long a session lives without use; 0 means 12 hours (a shift).
	TTL time.Duration
	// Secure marks the cookie Secure (the page is served over HTTPS).
	Secure bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New checks the password hash and makes a manager.
func New(o Options) (*Manager, error) {
	m := &Manager{ttl: o.TTL, secure: o.Secure, now: o.Now, sessions: map[string]Session{}}
	if m.ttl <= 0 {
		m.ttl = 12 * time.Hour
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.key = make([]byte, 32)
	if _, err := rand.Read(m.key); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if o.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(o.PasswordHash)); err != nil {
			return nil, fmt.Errorf("password hash: not a bcrypt hash: %w", err)
		}
		m.hash = []byte(o.PasswordHash)
	}
	return m, nil
}

// LoginRequired reports whether a password is configured.
func (m *Manager) LoginRequired() bool { return m.hash != nil }

// Get returns the live session of a request.
func (m *Manager) Get(r *http.Request) (Session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	if m.hash == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(b) != tokenBytes {
			return Session{}, false
		}
		return m.stateless(c.Value), true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[c.Value]
	if !ok {
		return Session{}, false
	}
	now := m.now()
	if !now.Before(s.Expires) {
		delete(m.sessions, c.Value)
		return Session{}, false
	}
	s.Expires = now.Add(m.ttl)
	m.sessions[c.Value] = s
	return s, true
}

// Ensure returns the request's session. Without a login it starts one if
// there is none, setting its cookie and storing nothing; with a login a
// request that has none gets an unauthenticated Session and nothing is
// stored or set: only Login makes sessions.
func (m *Manager) Ensure(w http.ResponseWriter, r *http.Request) (Session, error) {
	if s, ok := m.Get(r); ok {
		return s, nil
	}
	if m.LoginRequired() {
		return Session{}, nil
	}
	id, err := randomToken()
	if err != nil {
		return Session{}, err
	}
	http.SetCookie(w, m.cookie(id, 0))
	return m.stateless(id), nil
}

// stateless is the session of id when no login is configured.
func (m *Manager) stateless(id string) Session {
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(id))
	return Session{ID: id, CSRF: base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), Authed: true}
}

// Login checks password and, if right, starts a fresh authenticated session
// (a new id, so a session fixed before login is worthless after it).
func (m *Manager) Login(w http.ResponseWriter, r *http.Request, password string) (Session, error) {
	if m.hash == nil {
		return m.Ensure(w, r)
	}
	if err := bcrypt.CompareHashAndPassword(m.hash, []byte(password)); err != nil {
		return Session{}, ErrWrongPassword
	}
	if c, err := r.Cookie(CookieName); err == nil {
		m.mu.Lock()
		delete(m.sessions, c.Value)
		m.mu.Unlock()
	}
	return m.start(w)
}

// Logout ends the request's session and clears the cookie.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		m.mu.Lock()
		delete(m.sessions, c.Value)
		m.mu.Unlock()
	}
	http.SetCookie(w, m.cookie("", -1))
}

// CheckCSRF reports whether token is the CSRF token of the request's session.
func (m *Manager) CheckCSRF(r *http.Request, token string) bool {
	s, ok := m.Get(r)
	if !ok || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) == 1
}

// start stores a fresh logged-in session and sets its cookie.
func (m *Manager) start(w http.ResponseWriter) (Session, error) {
	id, err := randomToken()
	if err != nil {
		return Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return Session{}, err
	}
	now := m.now()
	s := Session{ID: id, CSRF: csrf, Authed: true, Expires: now.Add(m.ttl)}
	m.mu.Lock()
	m.evict(now)
	m.sessions[id] = s
	m.mu.Unlock()
	http.SetCookie(w, m.cookie(id, 0))
	return s, nil
}

// evict drops expired sessions and, if still full, the one closest to
// expiry. Must hold mu.
func (m *Manager) evict(now time.Time) {
	if len(m.sessions) < MaxSessions {
		return
	}
	var oldest string
	var oldestExp time.Time
	for id, s := range m.sessions {
		if !now.Before(s.Expires) {
			delete(m.sessions, id)
			continue
		}
		if oldest == "" || s.Expires.Before(oldestExp) {
			oldest, oldestExp = id, s.Expires
		}
	}
	if len(m.sessions) >= MaxSessions {
		delete(m.sessions, oldest)
	}
}

func (m *Manager) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   m.secure,
		SameSite: http.SameSiteStrictMode,
	}
}

// tokenBytes is the size of session ids and CSRF tokens.
const tokenBytes = 32

func randomToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Limiter allows at most Max events per key in any Window; used for login
// attempts and review resolutions (each one a PIN try at the register).
type Limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	hits map[string][]time.Time
}

// MaxKeys bounds the limiter's table; beyond it, keys with no recent hits are
// forgotten first.
const MaxKeys = 4096

// NewLimiter makes a limiter of max events per window per key.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, hits: map[string][]time.Time{}}
}

// Allow records an event for key at now and reports whether it is within
// the limit. A refused event is not recorded, so waiting always helps.
func (l *Limiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := now.Add(-l.window)
	h := l.hits[key]
	i := 0
	for i < len(h) && !h[i].After(cut) {
		i++
	}
	h = h[i:]
	if len(h) >= l.max {
		l.hits[key] = h
		return false
	}
	if len(l.hits) >= MaxKeys {
		for k, v := range l.hits {
			if len(v) == 0 || !v[len(v)-1].After(cut) {
				delete(l.hits, k)
			}
		}
		if len(l.hits) >= MaxKeys {
			return false
		}
	}
	l.hits[key] = append(h, now)
	return true
}

// Refund takes back one event of key that Allow recorded at at, for an
// event that turns out not to count.
func (l *Limiter) Refund(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hits[key]
	for i := range h {
		if h[i].Equal(at) {
			l.hits[key] = append(h[:i:i], h[i+1:]...)
			return
		}
	}
}

// PINGuard limits manager PIN guesses per source at a display, which cannot
// check a PIN itself: every resolution sent counts against its source until
// the register answers that the PIN was right (or never looked at it). The
// register also limits guesses, per review and per register whatever the
// source; this limit is lower, so one device's guesses run out here before
// they use up the register's attempts and lock the manager out.
type PINGuard struct {
	lim *Limiter

	mu   sync.Mutex
	sent map[string]sentPIN // review → the last PIN sent for it
}

type sentPIN struct {
	source string
	at     time.Time
}

// NewPINGuard allows each source max unanswered-or-wrong PINs per window.
func NewPINGuard(max int, window time.Duration) *PINGuard {
	return &PINGuard{lim: NewLimiter(max, window), sent: map[string]sentPIN{}}
}

// Send counts a PIN that source sends for review, or reports false when
// the source has no guesses left.
func (g *PINGuard) Send(source, review string, now time.Time) bool {
	if !g.lim.Allow(source, now) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sent) >= MaxKeys {
		for k, s := range g.sent {
			if now.Sub(s.at) >= g.lim.window {
				delete(g.sent, k)
			}
		}
	}
	g.sent[review] = sentPIN{source, now}
	return true
}

// Right gives back the last PIN sent for review: the register took it, or
// refused the resolution without comparing it, or it never left.
func (g *PINGuard) Right(review string) {
	g.mu.Lock()
	s, ok := g.sent[review]
	delete(g.sent, review)
	g.mu.Unlock()
	if ok {
		g.lim.Refund(s.source, s.at)
	}
}

// Wrong settles the last PIN sent for review as a wrong guess: it keeps
// counting against its source for the window.
func (g *PINGuard) Wrong(review string) {
	g.mu.Lock()
	delete(g.sent, review)
	g.mu.Unlock()
}

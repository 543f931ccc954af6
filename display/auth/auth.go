// Package auth guards the display page: sessions in a cookie, an optional
// store password (a bcrypt hash from the configuration), a CSRF token per
// session for state-changing requests, and per-client rate limits.
//
// Every page gets a session, login or not, because even a display bound to
// 127.0.0.1 can be posted to by any web page open in the same browser; the
// CSRF token is what stops that. Only a login stores a session (in an
// internal/session table, as the HQ console does): without a password the
// session lives in its cookie alone (the CSRF token is a MAC of its id),
// and with one a visitor who has not logged in gets none. So no number of
// cookie-less requests can fill the table and evict the manager's session.
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

	"github.com/posguard/posguard/internal/ratelimit"
	"github.com/posguard/posguard/internal/session"
)

// CookieName is the session cookie.
const CookieName = "posguard_display"

// MaxSessions bounds the table of logged-in sessions; the oldest are
// evicted first. Only logins (rate limited per client) add to it.
const MaxSessions = session.DefaultMax

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
	hash []byte // nil: no login required
	// key makes the CSRF tokens of the stateless sessions used without
	// a login.
	key   []byte
	table *session.Table[struct{}] // logged-in sessions
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
	m := &Manager{table: session.New[struct{}](session.Options{Cookie: CookieName, TTL: o.TTL, Max: MaxSessions, Secure: o.Secure, Now: o.Now})}
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
	if m.hash == nil {
		c, err := r.Cookie(CookieName)
		if err != nil || c.Value == "" {
			return Session{}, false
		}
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(b) != session.TokenBytes {
			return Session{}, false
		}
		return m.stateless(c.Value), true
	}
	s, ok := m.table.Get(r)
	if !ok {
		return Session{}, false
	}
	return Session{ID: s.ID, CSRF: s.CSRF, Authed: true, Expires: s.Expires}, true
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
	id, err := session.RandomToken()
	if err != nil {
		return Session{}, err
	}
	m.table.SetCookie(w, r, id)
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
	return m.start(w, r)
}

// Logout ends the request's session and clears the cookie.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) { m.table.End(w, r) }

// CheckCSRF reports whether token is the CSRF token of the request's session.
func (m *Manager) CheckCSRF(r *http.Request, token string) bool {
	s, ok := m.Get(r)
	if !ok || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) == 1
}

// start stores a fresh logged-in session and sets its cookie.
func (m *Manager) start(w http.ResponseWriter, r *http.Request) (Session, error) {
	s, err := m.table.Start(w, r, struct{}{})
	if err != nil {
		return Session{}, err
	}
	return Session{ID: s.ID, CSRF: s.CSRF, Authed: true, Expires: s.Expires}, nil
}

// Limiter allows at most a number of events per key in a window; used for
// login attempts and review resolutions (each one a PIN try at the
// register).
type Limiter = ratelimit.Limiter

// NewLimiter makes a limiter of max events per window per key.
func NewLimiter(max int, window time.Duration) *Limiter { return ratelimit.New(max, window) }

// MaxKeys bounds a limiter's table.
const MaxKeys = ratelimit.MaxKeys

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
			if now.Sub(s.at) >= g.lim.Window() {
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

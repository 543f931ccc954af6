package apiauth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/posguard/posguard/internal/ratelimit"
	"github.com/posguard/posguard/internal/session"
)

// ConsoleCookie is the HQ console's session cookie.
const ConsoleCookie = "posguard_console"

// CSRFHeader carries a console session's CSRF token on unsafe requests.
const CSRFHeader = "X-CSRF-Token"

// Login limits: guesses at one user's password, from anywhere, and from
// one address, whichever user. Unknown names share one count, so a flood
// of made-up names cannot fill the table.
const (
	LoginsPerUser    = 10
	LoginsPerAddress = 30
	LoginWindow      = 10 * time.Minute
	unknownUserKey   = "\x00unknown"
)

// ErrTooManyLogins is a login refused by the rate limits.
var ErrTooManyLogins = errors.New("too many login attempts: wait a few minutes")

// Console is the console's users and their sessions: a login checks the
// password (bcrypt) and starts a session whose principal is the user, with
// the user's role, via "console". Safe for concurrent use.
type Console struct {
	users  *Users
	table  *session.Table[Principal]
	byUser *ratelimit.Limiter
	byAddr *ratelimit.Limiter
	now    func() time.Time
}

// ConsoleOptions tune a Console; zero values take the defaults.
type ConsoleOptions struct {
	TTL         time.Duration // a session's life without use (session.DefaultTTL)
	MaxSessions int           // session.DefaultMax
	Secure      bool          // cookie Secure even on plain HTTP requests (behind a TLS proxy)
	Now         func() time.Time
	// Login attempts allowed per user and per address in LoginWindow
	// (LoginsPerUser, LoginsPerAddress).
	PerUser, PerAddress int
}

// NewConsole makes the sessions of users.
func NewConsole(users *Users, o ConsoleOptions) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PerUser <= 0 {
		o.PerUser = LoginsPerUser
	}
	if o.PerAddress <= 0 {
		o.PerAddress = LoginsPerAddress
	}
	return &Console{
		users:  users,
		table:  session.New[Principal](session.Options{Cookie: ConsoleCookie, TTL: o.TTL, Max: o.MaxSessions, Secure: o.Secure, Now: o.Now}),
		byUser: ratelimit.New(o.PerUser, LoginWindow),
		byAddr: ratelimit.New(o.PerAddress, LoginWindow),
		now:    o.Now,
	}
}

// Login checks name and password and, if right, starts a session (a new
// id, whatever the request carried). Attempts count against the user and
// the client's address, right or wrong.
func (c *Console) Login(w http.ResponseWriter, r *http.Request, name, password string) (session.Session[Principal], error) {
	userKey := name
	if _, ok := c.users.Lookup(name); !ok {
		userKey = unknownUserKey
	}
	addr := ClientAddr(r)
	now := c.now()
	if !c.byAddr.Allow(addr, now) {
		return session.Session[Principal]{}, ErrTooManyLogins
	}
	if !c.byUser.Allow(userKey, now) {
		c.byAddr.Refund(addr, now)
		return session.Session[Principal]{}, ErrTooManyLogins
	}
	u, err := c.users.Check(name, password)
	if err != nil {
		return session.Session[Principal]{}, err
	}
	return c.table.Start(w, r, Principal{Name: u.Name, Role: u.Role, Via: "console"})
}

// Logout ends the request's session.
func (c *Console) Logout(w http.ResponseWriter, r *http.Request) { c.table.End(w, r) }

// Session is the request's live session.
func (c *Console) Session(r *http.Request) (session.Session[Principal], bool) { return c.table.Get(r) }

// Sessions is the number of sessions held.
func (c *Console) Sessions() int { return c.table.Len() }

// ClientAddr is the request's client IP (without the port), the key of
// per-address limits.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authority decides who calls: API tokens and client certificates
// (Tokens), console sessions (Console), or, with neither, everyone as
// Open.
type Authority struct {
	Tokens  *Tokens
	Console *Console
}

// IsOpen reports whether every caller is let through as Open.
func (a Authority) IsOpen() bool { return a.Tokens == nil && a.Console == nil }

// ErrCSRF is an unsafe request with a console session but without its
// CSRF token: what a foreign page riding on the cookie would send.
var ErrCSRF = fmt.Errorf("missing or wrong %s header for this console session", CSRFHeader)

// Authenticate finds the caller of r: a bearer token; else a console
// session, whose unsafe requests must carry its CSRF token; else a
// verified client certificate named in the tokens file.
func (a Authority) Authenticate(r *http.Request) (Principal, error) {
	if a.IsOpen() {
		return Open, nil
	}
	if r.Header.Get("Authorization") != "" || a.Console == nil {
		if a.Tokens == nil {
			return Principal{}, errors.New("authentication required: log in to the console (this HQ has no API tokens file)")
		}
		return a.Tokens.Authenticate(r)
	}
	if s, ok := a.Console.Session(r); ok {
		if !safeMethod(r.Method) && !s.CSRFMatches(r.Header.Get(CSRFHeader)) {
			return Principal{}, ErrCSRF
		}
		return s.Data, nil
	}
	if a.Tokens != nil {
		if p, err := a.Tokens.Authenticate(r); err == nil || !errors.Is(err, ErrUnauthenticated) {
			return p, err
		}
	}
	if _, err := r.Cookie(ConsoleCookie); err == nil {
		return Principal{}, errors.New("console session expired or ended: log in again")
	}
	if a.Tokens == nil {
		return Principal{}, errors.New("authentication required: log in to the console")
	}
	return Principal{}, ErrUnauthenticated
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Require wraps next so that only callers whose role allows need reach it;
// the caller is in the request's context for next (Caller).
func (a Authority) Require(need Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		switch {
		case errors.Is(err, ErrCSRF):
			httpError(w, http.StatusForbidden, err.Error())
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="posguard-hq"`)
			httpError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if !p.Role.Allows(need) {
			httpError(w, http.StatusForbidden, fmt.Sprintf("%s has role %s; this needs %s", p, p.Role, need))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), p)))
	})
}

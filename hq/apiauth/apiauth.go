// Package apiauth authenticates callers of HQ's HTTP API: API tokens from a
// file, where only each token's SHA-256 is kept, TLS client certificates
// named there by their CN, and the HQ console's users (users.go), whose
// logins make sessions (console.go). Each caller has a role: read may
// query, analyst may also change the lists and move cases, admin may do
// everything (push policies, manage users).
//
// Tokens are random (32 bytes from crypto/rand), so a fast hash is the
// right one: a slow password hash protects guessable secrets, and would make
// every API call cost tens of milliseconds.
package apiauth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/posguard/posguard/internal/ascii"
	"github.com/posguard/posguard/internal/httpserve"
)

// Role is what a caller may do.
type Role string

const (
	Read    Role = "read"    // fleet, events, alerts, denylist status, cases, allowlist, metrics; the console's viewer
	Analyst Role = "analyst" // read, and change the denylist and allowlist, move cases
	Admin   Role = "admin"   // everything: also push policies and manage users
)

// rank orders the roles: each allows what the ones below it do.
var rank = map[Role]int{Read: 1, Analyst: 2, Admin: 3}

// Allows reports whether a caller with role r may do what need requires.
func (r Role) Allows(need Role) bool { return rank[r] > 0 && rank[r] >= rank[need] }

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return rank[r] > 0 }

// roleHelp lists the roles in error messages.
const roleHelp = "want read, analyst or admin"

// TokenPrefix starts every token, so a leaked one is recognisable in a log
// or a repository scan.
const TokenPrefix = "pgt_"

const (
	maxFileBytes = 1 << 20
	maxNameLen   = 64
)

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
	Via  string // "token" or "cert"
}

// String is how a change records who made it: "ops-bot (token)".
func (p Principal) String() string { return p.Name + " (" + p.Via + ")" }

type entry struct {
	name string
	role Role
	sum  [sha256.Size]byte // token entries
	cert bool              // a client certificate with CN name
}

// Tokens is a parsed tokens file.
type Tokens struct{ entries []entry }

// Load reads a tokens file. It must not be readable by others than its
// owner's group: it names who may change the denylist.
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("API tokens: %w", err)
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("API tokens %s: %w", path, err)
	}
	return t, nil
}

// Parse reads the file format, one entry a line:
//
//	# comment
//	NAME ROLE sha256:HEX     a token whose SHA-256 is HEX
//	NAME ROLE cert           a TLS client certificate whose CN is NAME
//
// NAME is 1..64 bytes of visible ASCII, ROLE read, analyst or admin. Every problem
// is reported with its line number.
func Parse(r io.Reader) (*Tokens, error) {
	var t Tokens
	seen := map[string]int{}
	err := eachLine(r, func(n int, line string) error {
		e, err := parseLine(line)
		if err != nil {
			return err
		}
		key := e.name + "/" + fmt.Sprint(e.cert)
		if first, dup := seen[key]; dup {
			return fmt.Errorf("%q is already named on line %d", e.name, first)
		}
		seen[key] = n
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.entries) == 0 {
		return nil, errors.New("no entries: add one with 'posguard hq-token'")
	}
	return &t, nil
}

// eachLine calls f with every line of a credentials file but blanks and
// # comments, and its number; it bounds the file to maxFileBytes and
// reports every line f refuses, each with its number.
func eachLine(r io.Reader, f func(n int, line string) error) error {
	sc := bufio.NewScanner(io.LimitReader(r, maxFileBytes+1))
	sc.Buffer(make([]byte, 4096), maxFileBytes+1)
	var errs []error
	n, size := 0, 0
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := f(n, line); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	if size > maxFileBytes {
		return fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return errors.Join(errs...)
}

func parseLine(line string) (entry, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return entry{}, fmt.Errorf("want NAME ROLE sha256:HEX or NAME ROLE cert, got %d fields", len(f))
	}
	e := entry{name: f[0], role: Role(f[1])}
	if err := CheckName(e.name); err != nil {
		return entry{}, err
	}
	if !e.role.Valid() {
		return entry{}, fmt.Errorf("role %q: %s", f[1], roleHelp)
	}
	switch hexSum, ok := strings.CutPrefix(f[2], "sha256:"); {
	case f[2] == "cert":
		e.cert = true
	case ok:
		b, err := hex.DecodeString(hexSum)
		if err != nil || len(b) != sha256.Size {
			return entry{}, fmt.Errorf("sha256:%s: want %d hex digits", hexSum, 2*sha256.Size)
		}
		copy(e.sum[:], b)
	default:
		return entry{}, fmt.Errorf("credential %q: want sha256:HEX or cert (a token itself never goes in the file)", redact(f[2]))
	}
	return e, nil
}

// CheckName checks an entry's name.
func CheckName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", name, maxNameLen)
	}
	return ascii.Visible("name", name)
}

// redact keeps a pasted token out of error messages and logs.
func redact(s string) string {
	if strings.HasPrefix(s, TokenPrefix) || len(s) > 12 {
		return s[:min(4, len(s))] + "…"
	}
	return s
}

// NewToken makes a token for name and role and the file line that accepts
// it. The token is shown once; only its hash is kept.
func NewToken(name string, role Role) (token, line string, err error) {
	if err := CheckName(name); err != nil {
		return "", "", err
	}
	if !role.Valid() {
		return "", "", fmt.Errorf("role %q: %s", role, roleHelp)
	}
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	return token, fmt.Sprintf("%s %s sha256:%x", name, role, sum), nil
}

// ErrUnauthenticated: no valid credential.
var ErrUnauthenticated = errors.New("authentication required: Authorization: Bearer TOKEN, or a client certificate named in the tokens file")

// Authenticate finds the caller of r: a bearer token, else a verified TLS
// client certificate.
func (t *Tokens) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, errors.New("Authorization: want Bearer TOKEN")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		// Every entry is compared, in constant time, so the answer's timing
		// says nothing about which hashes exist.
		var found *entry
		for i := range t.entries {
			e := &t.entries[i]
			if !e.cert && subtle.ConstantTimeCompare(e.sum[:], sum[:]) == 1 {
				found = e
			}
		}
		if found == nil {
			return Principal{}, errors.New("unknown API token")
		}
		return Principal{Name: found.name, Role: found.role, Via: "token"}, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		for _, e := range t.entries {
			if e.cert && e.name == cn {
				return Principal{Name: e.name, Role: e.role, Via: "cert"}, nil
			}
		}
		return Principal{}, fmt.Errorf("client certificate %q is not in the tokens file", cn)
	}
	return Principal{}, ErrUnauthenticated
}

type ctxKey struct{}

// Open is the caller when neither a tokens file nor a users file is
// configured, which HQ allows only on a loopback listener.
var Open = Principal{Name: "local", Role: Admin, Via: "loopback, no tokens file"}

// Require wraps next so that only token or certificate callers whose role
// allows need reach it; t nil lets every caller through as Open. See
// Authority.Require for console sessions too.
func Require(t *Tokens, need Role, next http.Handler) http.Handler {
	return Authority{Tokens: t}.Require(need, next)
}

// WithCaller is ctx carrying p as the caller (for handlers reached other
// ways than Require, and tests).
func WithCaller(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

func httpError(w http.ResponseWriter, code int, msg string) { httpserve.Error(w, code, msg) }

// Caller is the principal Require let through.
func Caller(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(ctxKey{}).(Principal)
	return p, ok
}

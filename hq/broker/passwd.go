package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/wire"
)

// MinCost is the lowest bcrypt cost a password file may use. Below it a
// stolen file is cheap to brute-force; 10 is bcrypt's own default.
const MinCost = 10

// maxPasswordFile bounds a password file: a chain of 10,000 registers is
// well under 1 MiB.
const maxPasswordFile = 4 << 20

// Passwords is a parsed password file: one bcrypt hash per identity.
type Passwords struct {
	hashes  map[string][]byte
	secrets map[string][32]byte // WithSecret's, by SHA-256
}

// LoadPasswords reads a password file (see ParsePasswords).
func LoadPasswords(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	p, err := ParsePasswords(data)
	if err != nil {
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	return p, nil
}

// ParsePasswords parses the lines of a password file: "identity:hash",
// the format of mosquitto_passwd and of `htpasswd -B`, with bcrypt hashes
// ($2a$, $2b$ or $2y$) of cost MinCost or more. Blank lines and lines
// starting with # are skipped. Every identity must be a posguard one (hq,
// hq-NAME, display/STORE, STORE/REG) and appear once: a typo would
// otherwise leave a client locked out with no hint why.
func ParsePasswords(data []byte) (*Passwords, error) {
	if len(data) > maxPasswordFile {
		return nil, fmt.Errorf("larger than %d bytes", maxPasswordFile)
	}
	p := &Passwords{hashes: make(map[string][]byte)}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want identity:bcrypt-hash", i+1)
		}
		if err := CheckIdentity(user); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if _, dup := p.hashes[user]; dup {
			return nil, fmt.Errorf("line %d: identity %q listed twice", i+1, user)
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", i+1, user, err)
		}
		p.hashes[user] = []byte(hash)
	}
	if len(p.hashes) == 0 {
		return nil, errors.New("no identity in it")
	}
	return p, nil
}

func checkHash(hash string) error {
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return errors.New("not a bcrypt hash ($2a$, $2b$ or $2y$; mosquitto_passwd's $6$/$7$ hashes are not accepted)")
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return fmt.Errorf("bcrypt hash: %w", err)
	}
	if cost < MinCost {
		return fmt.Errorf("bcrypt cost %d below the minimum %d", cost, MinCost)
	}
	// bcrypt.Cost reads only the prefix; a truncated hash would never
	// match and lock the identity out silently.
	if len(hash) != 60 {
		return fmt.Errorf("bcrypt hash is %d bytes, want 60", len(hash))
	}
	return nil
}

// CheckIdentity accepts the usernames the ACL knows: HQ ("hq", "hq-NAME"),
// a store display ("display/STORE"), a store broker's bridge
// ("bridge/STORE") and a register ("STORE/REG").
func CheckIdentity(user string) error {
	if wire.IsHQUsername(user) {
		return nil
	}
	if store, ok := strings.CutPrefix(user, "display/"); ok {
		if err := wire.ValidateStore(store); err != nil {
			return fmt.Errorf("display identity %q: %w", user, err)
		}
		return nil
	}
	if store, ok := strings.CutPrefix(user, "bridge/"); ok {
		if err := wire.ValidateStore(store); err != nil {
			return fmt.Errorf("bridge identity %q: %w", user, err)
		}
		return nil
	}
	store, reg, ok := strings.Cut(user, "/")
	if !ok {
		return fmt.Errorf("identity %q: want hq, hq-NAME, display/STORE, bridge/STORE or STORE/REG", user)
	}
	if err := wire.ValidateStore(store); err != nil {
		return fmt.Errorf("identity %q: %w", user, err)
	}
	if err := wire.ValidateRegister(reg); err != nil {
		return fmt.Errorf("identity %q: %w", user, err)
	}
	return nil
}

// HashLine is one password file line for user: "user:bcrypt-hash" at
// MinCost.
func HashLine(user, password string) (string, error) {
	if err := CheckIdentity(user); err != nil {
		return "", err
	}
	if password == "" {
		return "", fmt.Errorf("identity %s: empty password", user)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), MinCost)
	if err != nil {
		return "", fmt.Errorf("identity %s: %w", user, err)
	}
	return user + ":" + string(h), nil
}

// WithSecret returns a copy of p (nil: an empty table) with a secret
// made now for user, and the secret, for a client that gets it from its
// maker and never from a person: HQ in the broker's own process, tests.
// A 128-bit random secret needs no key stretching, so it is kept as its
// SHA-256 and checked without bcrypt's cost. user must not be in p: the
// file's owner would otherwise find their entry silently overridden.
func (p *Passwords) WithSecret(user string) (*Passwords, string, error) {
	if err := CheckIdentity(user); err != nil {
		return nil, "", err
	}
	q := &Passwords{hashes: make(map[string][]byte), secrets: make(map[string][32]byte)}
	if p != nil {
		maps.Copy(q.hashes, p.hashes)
		maps.Copy(q.secrets, p.secrets)
	}
	if _, dup := q.hashes[user]; dup {
		return nil, "", fmt.Errorf("identity %s is already in the password file", user)
	}
	secret := rand.Text()
	q.secrets[user] = sha256.Sum256([]byte(secret))
	return q, secret, nil
}

// Len is the number of identities.
func (p *Passwords) Len() int { return len(p.hashes) + len(p.secrets) }

// dummyHash is compared against when the identity is unknown, so an
// unknown name costs as much time as a wrong password and names cannot be
// probed by timing. Made on first use: a package-level bcrypt would slow
// the start of every program linking this package.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("posguard unknown identity"), MinCost)
	return h
})

// check reports whether password is user's.
func (p *Passwords) check(user string, password []byte) bool {
	if s, ok := p.secrets[user]; ok {
		got := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(got[:], s[:]) == 1
	}
	h, ok := p.hashes[user]
	if !ok {
		if len(p.hashes) > 0 { // else there is no bcrypt time to match
			_ = bcrypt.CompareHashAndPassword(dummyHash(), password)
		}
		return false
	}
	return bcrypt.CompareHashAndPassword(h, password) == nil
}

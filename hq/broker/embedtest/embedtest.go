// Package embedtest runs the embedded broker (hq/broker) for tests the way
// a one-machine setup does: every identity the test names has a password,
// so tests connect with credentials and the ACL applies to them as in
// production.
package embedtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/internal/mqttconn"
)

// Auth is a broker's password table and the passwords in it.
type Auth struct {
	tb        testing.TB
	dir       string
	passwords map[string]string
	table     *broker.Passwords
}

// New makes a random secret for each identity (hq, hq-NAME,
// display/STORE, STORE/REG) with broker.Passwords.WithSecret: no bcrypt,
// which under the race detector would take seconds per connect.
func New(tb testing.TB, identities ...string) *Auth {
	tb.Helper()
	a := &Auth{tb: tb, dir: tb.TempDir(), passwords: make(map[string]string)}
	for _, id := range identities {
		var err error
		if a.table, a.passwords[id], err = a.table.WithSecret(id); err != nil {
			tb.Fatal(err)
		}
	}
	return a
}

// NewFile makes a random password for each identity and the bcrypt
// password file holding their hashes (File), as an operator would.
func NewFile(tb testing.TB, identities ...string) *Auth {
	tb.Helper()
	a := &Auth{tb: tb, dir: tb.TempDir(), passwords: make(map[string]string)}
	var lines []string
	for _, id := range identities {
		pw := make([]byte, 16)
		rand.Read(pw)
		a.passwords[id] = hex.EncodeToString(pw)
		line, err := broker.HashLine(id, a.passwords[id])
		if err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(a.File(), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	var err error
	if a.table, err = broker.LoadPasswords(a.File()); err != nil {
		tb.Fatal(err)
	}
	return a
}

// File is the password file's path (NewFile only).
func (a *Auth) File() string { return filepath.Join(a.dir, "passwd") }

// Passwords is the password table, for broker.Options.
func (a *Auth) Passwords() *broker.Passwords { return a.table }

// Password is identity's password.
func (a *Auth) Password(identity string) string {
	pw, ok := a.passwords[identity]
	if !ok {
		a.tb.Fatalf("embedtest: no password made for %q", identity)
	}
	return pw
}

// PasswordFile is a file holding identity's password, for a config's
// passwordFile key.
func (a *Auth) PasswordFile(identity string) string {
	path := filepath.Join(a.dir, strings.ReplaceAll(identity, "/", "_")+".pw")
	if err := os.WriteFile(path, []byte(a.Password(identity)+"\n"), 0o600); err != nil {
		a.tb.Fatal(err)
	}
	return path
}

// MQTT is the client configuration of identity for the broker at url.
func (a *Auth) MQTT(url, identity string) mqttconn.Config {
	return mqttconn.Config{Broker: url, Username: identity, Password: a.Password(identity)}
}

// Start runs the broker on addr ("" for an ephemeral port) until the test
// ends.
func (a *Auth) Start(addr string) *broker.Broker {
	a.tb.Helper()
	b, err := broker.Start(broker.Options{Addr: addr, Passwords: a.table})
	if err != nil {
		a.tb.Fatal(err)
	}
	a.tb.Cleanup(func() { b.Close() })
	return b
}

// Start is New followed by Start on an ephemeral port.
func Start(tb testing.TB, identities ...string) (*broker.Broker, *Auth) {
	tb.Helper()
	a := New(tb, identities...)
	return a.Start(""), a
}

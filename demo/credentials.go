package demo

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// credentials are the demo's broker identities and their passwords, made
// fresh each run: the embedded broker refuses anonymous clients, so the
// demo provisions its parts as an operator would with a password file.
type credentials struct {
	dir       string
	passwords map[string]string
}

// demoIdentities are every part that connects to the broker.
func demoIdentities() []string {
	return []string{wire.HQUsername, push.PushUsername, wire.DisplayUsername(storeID),
		wire.Username(storeID, "r1"), wire.Username(storeID, "r2")}
}

// newCredentials writes dir/passwd (identity:bcrypt-hash, what the broker
// reads) and one password file per identity (what each part reads).
func newCredentials(dir string) (*credentials, *broker.Passwords, error) {
	c := &credentials{dir: dir, passwords: make(map[string]string)}
	var lines []string
	for _, id := range demoIdentities() {
		c.passwords[id] = rand.Text()
		line, err := broker.HashLine(id, c.passwords[id])
		if err != nil {
			return nil, nil, err
		}
		lines = append(lines, line)
		if err := os.WriteFile(c.passwordFile(id), []byte(c.passwords[id]+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("demo credentials: %w", err)
		}
	}
	path := filepath.Join(dir, "passwd")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, nil, fmt.Errorf("demo credentials: %w", err)
	}
	table, err := broker.LoadPasswords(path)
	return c, table, err
}

// passwordFile is where identity's password is kept.
func (c *credentials) passwordFile(identity string) string {
	return filepath.Join(c.dir, "mqtt-"+strings.ReplaceAll(identity, "/", "_")+".password")
}

// mqtt is identity's client configuration for the broker at url.
func (c *credentials) mqtt(url, identity string) mqttconn.Config {
	return mqttconn.Config{Broker: url, Username: identity, Password: c.passwords[identity]}
}

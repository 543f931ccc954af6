package demo

import (
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
// fresh each run: the embedded broker refuses anonymous clients.
type credentials struct {
	dir       string
	passwords map[string]string
}

// demoIdentities are every part that connects to the broker.
func demoIdentities() []string {
	ids := []string{wire.HQUsername, push.PushUsername}
	for _, st := range stores {
		ids = append(ids, wire.DisplayUsername(st))
	}
	for _, t := range tills {
		ids = append(ids, wire.Username(t.store, t.id))
	}
	return ids
}

// newCredentials makes a secret per identity for the broker's table and
// writes each to the file its part reads (the agents' hq.passwordFile).
// Made by the demo and never typed by a person, the secrets need no bcrypt
// file: see broker.Passwords.WithSecret.
func newCredentials(dir string) (*credentials, *broker.Passwords, error) {
	c := &credentials{dir: dir, passwords: make(map[string]string)}
	var table *broker.Passwords
	for _, id := range demoIdentities() {
		var err error
		if table, c.passwords[id], err = table.WithSecret(id); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(c.passwordFile(id), []byte(c.passwords[id]+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("demo credentials: %w", err)
		}
	}
	return c, table, nil
}

// passwordFile is where identity's password is kept.
func (c *credentials) passwordFile(identity string) string {
	return filepath.Join(c.dir, "mqtt-"+strings.ReplaceAll(identity, "/", "_")+".password")
}

// mqtt is identity's client configuration for the broker at url.
func (c *credentials) mqtt(url, identity string) mqttconn.Config {
	return mqttconn.Config{Broker: url, Username: identity, Password: c.passwords[identity]}
}

// Package config is the register daemon's configuration file: YAML decoded
// strictly (unknown keys are errors), defaults filled in, and every value
// checked before the agent opens a port, a file or a socket. Each problem is
// reported with the key it is about ("scanner.baud: must be ...").
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/firmware-bridge/posout"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/yamlpath"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// Defaults of the optional settings.
const (
	DefaultListen       = "127.0.0.1:8088"
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultReviewTO     = 2 * time.Minute
	DefaultOfflineAfter = 10 * time.Minute
	DefaultResendAfter  = 30 * time.Second
	DefaultKeep         = 7 * 24 * time.Hour
	DefaultPruneEvery   = time.Hour
	DefaultOutboxCap    = 100_000
	// MaxFileSize bounds the configuration file; a bigger one is not ours.
	MaxFileSize = 1 << 20
	// minAccountKey is the shortest accepted account hashing secret.
	minAccountKey = 16
)

// Config is the agent configuration file.
type Config struct {
	Store    string `yaml:"store"`
	Register string `yaml:"register"`
	// State is the path of the bbolt state file.
	State string `yaml:"state"`
	// Scanner is the scanner link; absent for a register whose POS
	// software integrates over HTTP only.
	Scanner *scanner.Config `yaml:"scanner,omitempty"`
	// POS is the POS-facing output port; absent when the POS takes
	// decisions over HTTP.
	POS         *posout.Config `yaml:"pos,omitempty"`
	Policy      PolicyConfig   `yaml:"policy"`
	Tokens      TokensConfig   `yaml:"tokens"`
	HQ          *HQConfig      `yaml:"hq,omitempty"`
	HTTP        HTTPConfig     `yaml:"http"`
	Session     SessionConfig  `yaml:"session"`
	Review      ReviewConfig   `yaml:"review"`
	ManagerPINs []string       `yaml:"managerPINs"`
	Retention   Retention      `yaml:"retention"`

	// Filled by Load, not part of the file.
	TrustedKeys []bundle.TrustedKey `yaml:"-"`
	AccountKey  Secret              `yaml:"-"`
}

// PolicyConfig says where policies come from.
type PolicyConfig struct {
	// Bootstrap is an unsigned local policy file used until the first
	// signed policy arrives from HQ.
	Bootstrap   string       `yaml:"bootstrap,omitempty"`
	TrustedKeys []TrustedKey `yaml:"trustedKeys"`
}

// TrustedKey names an HQ policy-signing public key (PEM PKIX).
type TrustedKey struct {
	KID  string `yaml:"kid"`
	File string `yaml:"file"`
}

// TokensConfig holds the secret for hashing EMV PANs and opaque codes into
// account keys; it must be the same on every register of the chain.
type TokensConfig struct {
	AccountKeyFile string `yaml:"accountKeyFile"`
}

// HQConfig is the MQTT link to headquarters.
type HQConfig struct {
	mqttconn.Config `yaml:",inline"`
	// OfflineAfter is how long without HQ contact before the policy's
	// offline limits apply.
	OfflineAfter time.Duration `yaml:"offlineAfter,omitempty"`
	// ResendAfter is how long an event may wait for HQ's ack before the
	// outbox is sent again from its oldest unacknowledged event.
	ResendAfter time.Duration `yaml:"resendAfter,omitempty"`
}

// HTTPConfig is the local API.
type HTTPConfig struct {
	Listen string `yaml:"listen,omitempty"`
	// AllowRemote permits a non-loopback listen address. The API resolves
	// reviews and takes payments: keep it on the register unless a
	// firewall protects it.
	AllowRemote bool `yaml:"allowRemote,omitempty"`
}

// SessionConfig bounds a scan session (one customer's cart).
type SessionConfig struct {
	IdleTimeout time.Duration `yaml:"idleTimeout,omitempty"`
	// VoidBarcode, when scanned, empties the cart.
	VoidBarcode string `yaml:"voidBarcode,omitempty"`
}

// ReviewConfig bounds how long a held payment waits.
type ReviewConfig struct {
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// Retention bounds the state file.
type Retention struct {
	// Keep is how long history, EMV counters and resolved reviews are
	// kept; it must cover the longest policy window.
	Keep       time.Duration `yaml:"keep,omitempty"`
	PruneEvery time.Duration `yaml:"pruneEvery,omitempty"`
	OutboxCap  int           `yaml:"outboxCap,omitempty"`
}

// SplitPIN reads a managerPINs entry: a bcrypt hash, or "NAME:HASH" so a
// resolution records whose PIN confirmed it. A bcrypt hash never contains
// ':', so the split is unambiguous.
func SplitPIN(entry string) (name, hash string) {
	if n, h, ok := strings.Cut(entry, ":"); ok {
		return n, h
	}
	return "", entry
}

// Secret is key material that must never reach a log.
type Secret []byte

func (Secret) String() string   { return "****" }
func (Secret) GoString() string { return "****" }

// Load reads, decodes, defaults and validates the file at path, and reads
// the key files it names.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.LoadKeys(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a configuration document without reading
// the files it names.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%d bytes exceeds %d", len(data), MaxFileSize)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("empty document")
	}
	paths := yamlpath.Of(&root)
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, keyed(err, paths)
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// keyed rewrites go-yaml's line-numbered errors to name the key.
func keyed(err error, paths yamlpath.Paths) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("yaml: %w", err)
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		pl, ok := paths.Locate(m)
		if !ok {
			msgs = append(msgs, m)
			continue
		}
		what := pl.Reason
		if pl.UnknownField != "" {
			what = "unknown key " + strconv.Quote(pl.UnknownField)
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s (line %d)", pl.Path, what, pl.Line))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (c *Config) defaults() {
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
	if c.Session.IdleTimeout == 0 {
		c.Session.IdleTimeout = DefaultIdleTimeout
	}
	if c.Review.Timeout == 0 {
		c.Review.Timeout = DefaultReviewTO
	}
	if c.HQ != nil && c.HQ.OfflineAfter == 0 {
		c.HQ.OfflineAfter = DefaultOfflineAfter
	}
	if c.HQ != nil && c.HQ.ResendAfter == 0 {
		c.HQ.ResendAfter = DefaultResendAfter
	}
	if c.Retention.Keep == 0 {
		c.Retention.Keep = DefaultKeep
	}
	if c.Retention.PruneEvery == 0 {
		c.Retention.PruneEvery = DefaultPruneEvery
	}
	if c.Retention.OutboxCap == 0 {
		c.Retention.OutboxCap = DefaultOutboxCap
	}
}

// Validate checks every value; the first problem is returned, named by key.
func (c *Config) Validate() error {
	if err := wire.ValidateStore(c.Store); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := wire.ValidateRegister(c.Register); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if c.State == "" {
		return errors.New("state: required (path of the state file)")
	}
	if c.Scanner != nil {
		if err := c.Scanner.Validate("scanner"); err != nil {
			return err
		}
	}
	if c.POS != nil {
		if err := c.POS.Validate("pos"); err != nil {
			return err
		}
		if c.Scanner != nil && c.Scanner.Port == c.POS.Port {
			return fmt.Errorf("pos.port: %s is also scanner.port", c.POS.Port)
		}
	}
	for i, k := range c.Policy.TrustedKeys {
		key := fmt.Sprintf("policy.trustedKeys[%d]", i)
		if k.KID == "" {
			return fmt.Errorf("%s.kid: required", key)
		}
		if k.File == "" {
			return fmt.Errorf("%s.file: required", key)
		}
		for _, o := range c.Policy.TrustedKeys[:i] {
			if o.KID == k.KID {
				return fmt.Errorf("%s.kid: %q is listed twice", key, k.KID)
			}
		}
	}
	if c.HQ != nil && len(c.Policy.TrustedKeys) == 0 {
		return errors.New("policy.trustedKeys: required when hq is configured (policies from HQ must be verified)")
	}
	if c.Tokens.AccountKeyFile == "" {
		return errors.New("tokens.accountKeyFile: required (the chain-wide secret for account keys)")
	}
	if c.HQ != nil {
		if err := c.HQ.Config.Validate(); err != nil {
			return fmt.Errorf("hq.%w", err)
		}
		if c.HQ.OfflineAfter < 0 {
			return fmt.Errorf("hq.offlineAfter: must be > 0, got %v", c.HQ.OfflineAfter)
		}
		// Below a second every slow ack would resend the whole window.
		if c.HQ.ResendAfter < time.Second {
			return fmt.Errorf("hq.resendAfter: must be at least 1s, got %v", c.HQ.ResendAfter)
		}
	}
	if err := checkListen(c.HTTP); err != nil {
		return err
	}
	if c.Session.IdleTimeout < 0 {
		return fmt.Errorf("session.idleTimeout: must be > 0, got %v", c.Session.IdleTimeout)
	}
	if c.Review.Timeout < 0 {
		return fmt.Errorf("review.timeout: must be > 0, got %v", c.Review.Timeout)
	}
	for i, entry := range c.ManagerPINs {
		name, h := SplitPIN(entry)
		if strings.ContainsFunc(name, unicode.IsControl) || len(name) > 64 {
			return fmt.Errorf("managerPINs[%d]: manager name %q: at most 64 printable characters", i, name)
		}
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return fmt.Errorf("managerPINs[%d]: not a bcrypt hash (make one with `htpasswd -bnBC 10 \"\" PIN | tr -d ':\\n'`): %w", i, err)
		}
	}
	switch {
	case c.Retention.Keep < 24*time.Hour:
		return fmt.Errorf("retention.keep: must be at least 24h (the longest policy window), got %v", c.Retention.Keep)
	case c.Retention.PruneEvery < time.Second:
		return fmt.Errorf("retention.pruneEvery: must be at least 1s, got %v", c.Retention.PruneEvery)
	case c.Retention.OutboxCap < 100:
		return fmt.Errorf("retention.outboxCap: must be at least 100, got %d", c.Retention.OutboxCap)
	}
	return nil
}

func checkListen(h HTTPConfig) error {
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %q: %w", h.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("http.listen: port %q is not a number 0-65535", port)
	}
	if h.AllowRemote {
		return nil
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("http.listen: %q is not a loopback address; set http.allowRemote: true to serve other hosts", h.Listen)
	}
	return nil
}

// LoadKeys reads the trusted policy keys and the account key secret.
func (c *Config) LoadKeys() error {
	c.TrustedKeys = c.TrustedKeys[:0]
	for i, k := range c.Policy.TrustedKeys {
		tk, err := bundle.LoadTrustedKey(k.KID, k.File)
		if err != nil {
			return fmt.Errorf("policy.trustedKeys[%d].file: %w", i, err)
		}
		c.TrustedKeys = append(c.TrustedKeys, tk)
	}
	b, err := os.ReadFile(c.Tokens.AccountKeyFile)
	if err != nil {
		return fmt.Errorf("tokens.accountKeyFile: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minAccountKey {
		return fmt.Errorf("tokens.accountKeyFile: %s holds %d bytes, want at least %d", c.Tokens.AccountKeyFile, len(b), minAccountKey)
	}
	c.AccountKey = Secret(b)
	return nil
}

// RestartNeeded lists the keys whose change only takes effect after a
// restart: they name files, ports and sockets opened once.
func RestartNeeded(old, cur *Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			keys = append(keys, key)
		}
	}
	diff("store", old.Store, cur.Store)
	diff("register", old.Register, cur.Register)
	diff("state", old.State, cur.State)
	diff("scanner", deref(old.Scanner), deref(cur.Scanner))
	diff("pos", deref(old.POS), deref(cur.POS))
	diff("policy.trustedKeys", old.Policy.TrustedKeys, cur.Policy.TrustedKeys)
	diff("tokens", old.Tokens, cur.Tokens)
	diff("hq", deref(old.HQ), deref(cur.HQ))
	diff("http", old.HTTP, cur.HTTP)
	diff("retention", old.Retention, cur.Retention)
	return keys
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

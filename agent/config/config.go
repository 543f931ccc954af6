// Package config is the register daemon's configuration file: YAML decoded
// strictly (unknown keys are errors), defaults filled in, and every value
// checked before the agent opens a port, a file or a socket. Every problem is
// reported at once, each with the key it is about ("scanner.baud: must be
// ...").
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
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/secretfile"
	"github.com/posguard/posguard/internal/yamlpath"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/reason"
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
	Messages    MessagesConfig `yaml:"messages,omitempty"`
	ManagerPINs []string       `yaml:"managerPINs"`
	Retention   Retention      `yaml:"retention"`

	// Filled by Load, not part of the file.
	TrustedKeys []bundle.TrustedKey `yaml:"-"`
	AccountKey  Secret              `yaml:"-"`
	// Warnings are what LoadKeys found risky but usable (a secret file
	// other users can read), for the agent to log.
	Warnings []Problem `yaml:"-"`
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
	// OfflineAfter is how long without HQ contact, or without the store
	// facts link, before the policy's offline limits apply.
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
	// AllowedHosts are further names clients use for the register in
	// the Host header (its DNS name). Any other name is refused, so a web
	// page cannot rebind its own name to the register and read the API;
	// localhost, loopback addresses and the listen address always work.
	AllowedHosts []string `yaml:"allowedHosts,omitempty"`
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

// MessagesConfig words what the POS shows with a decision.
type MessagesConfig struct {
	// Language of the decision's message (the fired rules' reasons) in
	// the answer to the POS: ja, the default, or en.
	Language string `yaml:"language,omitempty"`
}

// Retention bounds the state file.
type Retention struct {
	// Keep is how long history, EMV counters and resolved reviews are
	// kept; it must cover the longest policy window.
	Keep       time.Duration `yaml:"keep,omitempty"`
	PruneEvery time.Duration `yaml:"pruneEvery,omitempty"`
	OutboxCap  int           `yaml:"outboxCap,omitempty"`
}

// MinPINCost is the lowest bcrypt cost accepted for a manager PIN hash.
const MinPINCost = 10

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

// Problem is one thing wrong with the configuration, named by its key.
type Problem struct {
	Key    string // "scanner.baud", "policy.trustedKeys[0].file"
	Reason string
}

func (p Problem) String() string { return p.Key + ": " + p.Reason }

// problemOf reads an error worded "key: reason" (the sub-sections'
// validators) as a Problem.
func problemOf(err error) Problem {
	key, reason, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return Problem{Key: "document", Reason: err.Error()}
	}
	return Problem{Key: key, Reason: reason}
}

// ValidationError lists every problem of a configuration, so one run of
// `posguard agent --check` shows them all.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return strings.Join(msgs, "; ")
}

// problems collects Problems; err is nil when there are none.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Load reads, decodes, defaults and validates the file at path, and reads
// the key files it names. Every problem of the document and of its key
// files is in the returned *ValidationError (wrapped with the path).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		// The *PathError names the file already.
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	c, ps := parse(data)
	if c != nil {
		ps = append(ps, c.loadKeys()...)
	}
	if err := ps.err(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a configuration document without reading
// the files it names. On problems it returns a *ValidationError listing
// all of them.
func Parse(data []byte) (*Config, error) {
	c, ps := parse(data)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes what it can and validates it; c is nil when the document
// cannot be decoded at all (syntax, size), else decoded with defaults.
func parse(data []byte) (*Config, problems) {
	if len(data) > MaxFileSize {
		return nil, problems{{Key: "document", Reason: fmt.Sprintf("%d bytes exceeds %d", len(data), MaxFileSize)}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// go-yaml's messages start with "yaml: " already.
		return nil, problems{{Key: "document", Reason: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if root.Kind == 0 {
		return nil, problems{{Key: "document", Reason: "empty"}}
	}
	paths := yamlpath.Of(&root)
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ps problems
	if err := dec.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, problems{{Key: "document", Reason: strings.TrimPrefix(err.Error(), "yaml: ")}}
		}
		// A type error leaves the rest decoded: go on, and report the
		// values' problems too.
		ps = keyed(te, paths)
	}
	c.defaults()
	return c, append(ps, c.validate()...)
}

// keyed rewrites go-yaml's line-numbered errors to name the key.
func keyed(te *yaml.TypeError, paths yamlpath.Paths) problems {
	ps := make(problems, 0, len(te.Errors))
	for _, m := range te.Errors {
		pl, ok := paths.Locate(m)
		if !ok {
			ps.add("document", "%s", m)
			continue
		}
		what := pl.Reason
		if pl.UnknownField != "" {
			what = "unknown key " + strconv.Quote(pl.UnknownField)
		}
		ps.add(pl.Path, "%s (line %d)", what, pl.Line)
	}
	return ps
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
	if c.Messages.Language == "" {
		c.Messages.Language = reason.Japanese
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

// Validate checks every value; the error is a *ValidationError listing
// every problem, each named by its key.
func (c *Config) Validate() error { return c.validate().err() }

func (c *Config) validate() problems {
	var ps problems
	if err := wire.ValidateStore(c.Store); err != nil {
		ps.add("store", "%v", err)
	}
	if err := wire.ValidateRegister(c.Register); err != nil {
		ps.add("register", "%v", err)
	}
	if c.State == "" {
		ps.add("state", "required (path of the state file)")
	}
	// The serial sections and the MQTT link report their first problem
	// each, already named by key.
	if c.Scanner != nil {
		if err := c.Scanner.Validate("scanner"); err != nil {
			ps = append(ps, problemOf(err))
		}
	}
	if c.POS != nil {
		if err := c.POS.Validate("pos"); err != nil {
			ps = append(ps, problemOf(err))
		}
		if c.Scanner != nil && c.Scanner.Port != "" && c.Scanner.Port == c.POS.Port {
			ps.add("pos.port", "%s is also scanner.port", c.POS.Port)
		}
	}
	for i, k := range c.Policy.TrustedKeys {
		key := fmt.Sprintf("policy.trustedKeys[%d]", i)
		if k.KID == "" {
			ps.add(key+".kid", "required")
		}
		if k.File == "" {
			ps.add(key+".file", "required")
		}
		for _, o := range c.Policy.TrustedKeys[:i] {
			if k.KID != "" && o.KID == k.KID {
				ps.add(key+".kid", "%q is listed twice", k.KID)
				break
			}
		}
	}
	if c.HQ != nil && len(c.Policy.TrustedKeys) == 0 {
		ps.add("policy.trustedKeys", "required when hq is configured (policies from HQ must be verified)")
	}
	if c.Tokens.AccountKeyFile == "" {
		ps.add("tokens.accountKeyFile", "required (the chain-wide secret for account keys)")
	}
	if c.HQ != nil {
		if err := c.HQ.Config.Validate(); err != nil {
			p := problemOf(err)
			p.Key = "hq." + p.Key
			ps = append(ps, p)
		}
		if c.HQ.OfflineAfter < 0 {
			ps.add("hq.offlineAfter", "must be > 0, got %v", c.HQ.OfflineAfter)
		}
		// Below a second every slow ack would resend the whole window.
		if c.HQ.ResendAfter < time.Second {
			ps.add("hq.resendAfter", "must be at least 1s, got %v", c.HQ.ResendAfter)
		}
	}
	if err := checkListen(c.HTTP); err != nil {
		ps = append(ps, problemOf(err))
	}
	if c.Session.IdleTimeout < 0 {
		ps.add("session.idleTimeout", "must be > 0, got %v", c.Session.IdleTimeout)
	}
	if c.Review.Timeout < 0 {
		ps.add("review.timeout", "must be > 0, got %v", c.Review.Timeout)
	}
	if l := c.Messages.Language; l != "" && !reason.Valid(l) {
		ps.add("messages.language", "must be ja or en, not %q", l)
	}
	for i, entry := range c.ManagerPINs {
		key := fmt.Sprintf("managerPINs[%d]", i)
		name, h := SplitPIN(entry)
		if strings.ContainsFunc(name, unicode.IsControl) || len(name) > 64 {
			ps.add(key, "manager name %q: at most 64 printable characters", name)
		} else if cost, err := bcrypt.Cost([]byte(h)); err != nil {
			ps.add(key, "not a bcrypt hash (make one with `htpasswd -bnBC 10 \"\" PIN | tr -d ':\\n'`): %v", err)
		} else if cost < MinPINCost {
			ps.add(key, "bcrypt cost %d, at least %d (a 4-digit PIN hashed cheaply falls to a search of its 10,000 values; make one with `htpasswd -bnBC 10 \"\" PIN | tr -d ':\\n'`)", cost, MinPINCost)
		}
	}
	if c.Retention.Keep < 24*time.Hour {
		ps.add("retention.keep", "must be at least 24h (the longest policy window), got %v", c.Retention.Keep)
	}
	if c.Retention.PruneEvery < time.Second {
		ps.add("retention.pruneEvery", "must be at least 1s, got %v", c.Retention.PruneEvery)
	}
	if c.Retention.OutboxCap < 100 {
		ps.add("retention.outboxCap", "must be at least 100, got %d", c.Retention.OutboxCap)
	}
	return ps
}

func checkListen(h HTTPConfig) error {
	_, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %q: %w", h.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("http.listen: port %q is not a number 0-65535", port)
	}
	for i, n := range h.AllowedHosts {
		if err := httpserve.CheckName(n); err != nil {
			return fmt.Errorf("http.allowedHosts[%d]: %w", i, err)
		}
	}
	if h.AllowRemote {
		return nil
	}
	if loop, _ := httpserve.IsLoopback(h.Listen); !loop {
		return fmt.Errorf("http.listen: %q is not a loopback address; set http.allowRemote: true to serve other hosts", h.Listen)
	}
	return nil
}

// LoadKeys reads the trusted policy keys and the account key secret, and
// notes in Warnings the secret files other users can read. The error is
// a *ValidationError listing every file that could not be used.
func (c *Config) LoadKeys() error { return c.loadKeys().err() }

func (c *Config) loadKeys() problems {
	var ps problems
	c.TrustedKeys = c.TrustedKeys[:0]
	c.Warnings = nil
	for i, k := range c.Policy.TrustedKeys {
		if k.KID == "" || k.File == "" {
			continue // reported by validate
		}
		tk, err := bundle.LoadTrustedKey(k.KID, k.File)
		if err != nil {
			ps.add(fmt.Sprintf("policy.trustedKeys[%d].file", i), "%v", err)
			continue
		}
		c.TrustedKeys = append(c.TrustedKeys, tk)
	}
	if f := c.Tokens.AccountKeyFile; f != "" {
		b, err := os.ReadFile(f)
		switch {
		case err != nil:
			ps.add("tokens.accountKeyFile", "%v", err)
		case len(bytes.TrimSpace(b)) < minAccountKey:
			ps.add("tokens.accountKeyFile", "%s holds %d bytes, want at least %d", f, len(bytes.TrimSpace(b)), minAccountKey)
		default:
			c.AccountKey = Secret(bytes.TrimSpace(b))
			c.warnReadable("tokens.accountKeyFile", f)
		}
	}
	if c.HQ != nil {
		// The broker TLS files are read when the agent connects; a
		// check reads them now.
		if _, err := c.HQ.TLS(); err != nil {
			ps.add("hq", "%v", err)
		} else if c.HQ.KeyFile != "" {
			c.warnReadable("hq.keyFile", c.HQ.KeyFile)
		}
	}
	return ps
}

// warnReadable notes a secret file that group or others may read: the
// agent still runs (a fleet's files may be fixed later), but says so.
func (c *Config) warnReadable(key, path string) {
	if why := secretfile.Exposed(path); why != "" {
		c.Warnings = append(c.Warnings, Problem{Key: key, Reason: why})
	}
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

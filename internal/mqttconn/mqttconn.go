// Package mqttconn builds every posguard MQTT client (agent, HQ, display,
// policy push) the same way: broker URL checked once, TLS with a client
// certificate, capped reconnect backoff, routes installed before the first
// connection, and the connection's life (unreachable, connected, lost)
// logged in the same words by every program.
package mqttconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config names a broker and how to authenticate to it.
type Config struct {
	// Broker is tcp://host:1883 or ssl://host:8883 (mqtts:// and tls://
	// too), or several such URLs separated by commas: the nodes of a
	// clustered broker, tried in turn on every (re)connection (Brokers).
	Broker   string `yaml:"broker"`
	CAFile   string `yaml:"caFile"`   // CA bundle that signed the broker's certificate
	CertFile string `yaml:"certFile"` // client certificate; its CN is the MQTT identity
	KeyFile  string `yaml:"keyFile"`
	// Username is sent when no client certificate is used (the embedded
	// broker's password file); with certificates the broker takes the CN.
	Username string `yaml:"username"`
	// PasswordFile holds the password for Username (its first line), so
	// the secret is in neither the config nor the command line.
	PasswordFile string `yaml:"passwordFile"`
	// Password is the password itself, for callers in one process with
	// the broker (the demo, tests); takes precedence over PasswordFile.
	Password string `yaml:"-"`
	// MaxReconnect caps the reconnect backoff (default 10s): a register
	// must be back soon after the broker is.
	MaxReconnect time.Duration `yaml:"maxReconnect"`
}

// ValidateBroker checks a broker URL as every posguard program takes it.
// Errors quote the URL without its credentials.
func ValidateBroker(raw string) error {
	if raw == "" {
		return errors.New("broker: required")
	}
	if !strings.Contains(raw, "://") {
		// url.Parse reads "127.0.0.1:1883" as a path with a colon, or
		// "localhost:1883" as scheme "localhost": neither says what is
		// wrong.
		shown := Redact("tcp://" + raw)
		return fmt.Errorf("broker: %q has no scheme: write %s (or ssl://… for TLS)", strings.TrimPrefix(shown, "tcp://"), shown)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker: %q is not a URL", Redact(raw))
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("broker: scheme %q: want tcp://, ssl://, tls://, mqtt:// or mqtts://", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("broker: %q has no host", Redact(raw))
	}
	return nil
}

// Redact returns a broker URL fit for logs and errors: any user and
// password in it are cut out.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		u.User = nil
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// Brokers lists the broker URLs of Broker, in the order written.
func (c Config) Brokers() []string {
	var out []string
	for u := range strings.SplitSeq(c.Broker, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Redacted is Broker fit for logs: every URL without its credentials.
func (c Config) Redacted() string {
	urls := c.Brokers()
	for i, u := range urls {
		urls[i] = Redact(u)
	}
	return strings.Join(urls, ",")
}

// Validate checks the broker URLs and that the TLS files come as a set.
func (c Config) Validate() error {
	urls := c.Brokers()
	if len(urls) == 0 {
		return ValidateBroker("")
	}
	for _, u := range urls {
		if err := ValidateBroker(u); err != nil {
			return err
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("certFile and keyFile: give both or neither")
	}
	return nil
}

// TLS loads the TLS configuration, nil when no TLS file is configured.
func (c Config) TLS() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read broker CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA file %s: no PEM certificate in it", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load broker client certificate %s: %w", c.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Will is a last will: published by the broker when the client vanishes.
type Will struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// Client is what one program's client needs beyond the broker: identity,
// session, handlers.
type Client struct {
	ID string
	// Clean asks for a clean session. Without it the session persists:
	// QoS 1 messages published while the client is away are queued by
	// the broker and delivered as soon as it is back, before any
	// subscription is made again, so Handler is installed before the
	// first connection and every message has somewhere to go.
	Clean bool
	// Handler takes every message; it must not block (hand it to a
	// worker, see Queue). Required for clients that subscribe.
	Handler paho.MessageHandler
	// ManualAck leaves the broker's acknowledgement to the caller
	// (paho.Message.Ack), for a client that must not acknowledge a
	// message before it has stored it: the broker keeps an unacknowledged
	// message and delivers it again on the next connection.
	ManualAck bool
	// OnConnect runs after every (re)connection, on its own goroutine:
	// subscribe here, so subscriptions come back after a broker restart.
	OnConnect func(paho.Client)
	// OnLost runs when an established connection drops (paho reconnects).
	OnLost func(error)
	// OneShot is for a command that connects once and exits: a broker
	// that is not there is an error, not something to wait for.
	OneShot bool
	// KeepAlive is the ping interval (default 30s).
	KeepAlive time.Duration
	Will      *Will
	// Log receives the connection's life; nil discards it.
	Log *slog.Logger
	// WarnAfter is how long a first connection may take before the
	// broker is reported unreachable even without an error yet (a
	// silently dropped SYN takes ConnectTimeout); default 3s.
	WarnAfter time.Duration
}

// ConnectTimeout bounds one connection attempt.
const ConnectTimeout = 10 * time.Second

// Options returns paho options with posguard's defaults: auto-reconnect
// and connect retry with capped backoff (paho's own: a program starts while
// its broker is down and connects when it is up), handlers run in order on
// paho's router, and the connection's life logged (see Client).
func (c Config) Options(cl Client) (*paho.ClientOptions, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	urls := c.Brokers()
	for _, raw := range urls {
		if u, _ := url.Parse(raw); u != nil && (u.Scheme == "mqtts" || u.Scheme == "tls") && tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	lc := newLifecycle(c.Redacted(), cl)
	o := paho.NewClientOptions()
	// paho tries the servers in the order added, on the first connection
	// and on every reconnection. Starting each client at a node chosen by
	// its id spreads a fleet evenly over a cluster, and keeps a register
	// on the same node from one connection to the next while that node is
	// up; a node that is down is skipped at once (connection refused).
	start := spread(cl.ID, len(urls))
	for i := range urls {
		o.AddBroker(urls[(start+i)%len(urls)])
	}
	o.SetClientID(cl.ID).
		SetCleanSession(cl.Clean).
		SetAutoReconnect(true).
		SetConnectRetry(!cl.OneShot).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cmp.Or(c.MaxReconnect, 10*time.Second)).
		SetConnectTimeout(ConnectTimeout).
		SetKeepAlive(cmp.Or(cl.KeepAlive, 30*time.Second)).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetOrderMatters(true).
		SetStore(newStore()).
		SetAutoAckDisabled(cl.ManualAck).
		SetConnectionNotificationHandler(lc.notify).
		SetConnectionLostHandler(lc.lost)
	if cl.Handler != nil {
		o.SetDefaultPublishHandler(cl.Handler)
	}
	if cl.OnConnect != nil {
		o.SetOnConnectHandler(cl.OnConnect)
	}
	if cl.Will != nil {
		o.SetBinaryWill(cl.Will.Topic, cl.Will.Payload, 1, cl.Will.Retain)
	}
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	if c.Username != "" {
		o.SetUsername(c.Username)
	}
	pw, err := c.ReadPassword()
	if err != nil {
		return nil, err
	}
	if pw != "" {
		o.SetPassword(pw)
	}
	return o, nil
}

// spread picks a start index in [0, n) from a client id (FNV-1a).
func spread(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// ReadPassword is Password, or the first line of PasswordFile ("" for
// neither).
func (c Config) ReadPassword() (string, error) {
	if c.Password != "" || c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("broker password: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	if pw = strings.TrimSuffix(pw, "\r"); pw == "" {
		return "", fmt.Errorf("broker password file %s: empty first line", c.PasswordFile)
	}
	return pw, nil
}

// Identity is who this client is to the broker, and so its client id:
// its certificate's CN when it has one, else Username, else def.
func (c Config) Identity(def string) (string, error) {
	if c.CertFile == "" {
		return cmp.Or(c.Username, def), nil
	}
	cfg, err := c.TLS()
	if err != nil {
		return "", err
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return "", fmt.Errorf("broker client certificate %s: %w", c.CertFile, err)
	}
	return leaf.Subject.CommonName, nil
}

// Connect starts the client and waits for the first connection or ctx. With
// SetConnectRetry the client keeps trying in the background even after ctx
// ends; the caller owns Disconnect.
func Connect(ctx context.Context, o *paho.ClientOptions) (paho.Client, error) {
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("connect to MQTT broker: %w", err)
		}
		return c, nil
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, fmt.Errorf("connect to MQTT broker: %w", ctx.Err())
	}
}

// Wait waits for a paho token or ctx.
func Wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

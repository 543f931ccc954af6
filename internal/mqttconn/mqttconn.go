// Package mqttconn builds paho MQTT client options the same way for every
// posguard program (agent, HQ, display, policy push): broker URL, TLS with a
// client certificate, capped reconnect backoff, and a connect that honours a
// context.
package mqttconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config names a broker and how to authenticate to it.
type Config struct {
	Broker   string `yaml:"broker"`   // tcp://host:1883, ssl://host:8883 (mqtts:// and tls:// too)
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

// Validate checks the broker URL and that the TLS files come as a set.
func (c Config) Validate() error {
	if c.Broker == "" {
		return errors.New("broker: required")
	}
	u, err := url.Parse(c.Broker)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("broker: scheme %q: want tcp://, ssl://, tls://, mqtt:// or mqtts://", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("broker: %q has no host", c.Broker)
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

// Options returns paho options with posguard's defaults: persistent session
// (QoS 1 messages queued while away), auto-reconnect with capped backoff,
// handlers run in order on paho's router (our handlers only enqueue).
func (c Config) Options(clientID string) (*paho.ClientOptions, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := c.TLS()
	if err != nil {
		return nil, err
	}
	broker := c.Broker
	if u, _ := url.Parse(broker); u != nil && (u.Scheme == "mqtts" || u.Scheme == "tls") && tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	o := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(clientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cmp.Or(c.MaxReconnect, 10*time.Second)).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetOrderMatters(true)
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

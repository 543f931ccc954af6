// Package broker runs an embedded MQTT broker (mochi-mqtt) for one-machine
// setups, the demo and tests. It enforces the same topic ACL as the shipped
// Mosquitto configuration (scripts/mosquitto), so a register confined there is
// confined here too.
package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/internal/mochiclose"
	"github.com/posguard/posguard/wire"
)

// Options configure an embedded broker.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// TLS, when set, requires TLS; with ClientAuth set to require a
	// certificate, the certificate's CommonName becomes the MQTT username
	// (Mosquitto's use_identity_as_username).
	TLS *tls.Config
	// AllowRemote permits a plain-TCP listener on a non-loopback address.
	// Without TLS anybody can claim any username, so this is off by default.
	AllowRemote bool
	Logger      *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv       *mqtt.Server
	listener  *listeners.TCP
	tls       bool
	closeOnce sync.Once
	closeErr  error
}

// Start listens and serves until Close.
func Start(opts Options) (*Broker, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TLS == nil && !opts.AllowRemote {
		host, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded broker address %q: %w", opts.Addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("embedded broker address %q: plain TCP only on loopback; configure TLS with client certificates to listen beyond", opts.Addr)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// HQ's persistent session holds the events that arrive while HQ
	// restarts; mochi's default of 8,192 per client would drop the rest of
	// a busy minute (registers resend them, but only after their resend
	// interval). 65,535 is the most mochi takes.
	caps.MaximumInflight = math.MaxUint16
	srv := mqtt.New(&mqtt.Options{Logger: log.With("component", "broker"), InlineClient: true, Capabilities: caps})
	if err := srv.AddHook(&aclHook{tlsIdentity: opts.TLS != nil}, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "posguard", Address: opts.Addr, TLSConfig: opts.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker listen %s: %w", opts.Addr, err)
	}
	go func() {
		if err := srv.Serve(); err != nil {
			log.Error("embedded broker stopped", "err", err)
		}
	}()
	return &Broker{srv: srv, listener: tcp, tls: opts.TLS != nil}, nil
}

// Addr is the bound host:port.
func (b *Broker) Addr() string { return b.listener.Address() }

// URL is the address as an MQTT broker URL for paho.
func (b *Broker) URL() string {
	if b.tls {
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Close stops the broker and disconnects every client. Closing twice is
// harmless (mochi's own Close is not), and a client connecting meanwhile
// cannot hang it (see internal/mochiclose).
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { b.closeErr = mochiclose.Close(b.srv, b.listener) })
	return b.closeErr
}

// Server gives in-process access (inline publish/subscribe) for HQ running
// in the same process.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// aclHook authenticates by certificate identity when TLS is on and confines
// every client to the topics its username may use.
type aclHook struct {
	mqtt.HookBase
	tlsIdentity bool
}

func (h *aclHook) ID() string { return "posguard-acl" }

func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	if !h.tlsIdentity {
		return len(cl.Properties.Username) > 0
	}
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return false
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 || certs[0].Subject.CommonName == "" {
		return false
	}
	cl.Properties.Username = []byte(certs[0].Subject.CommonName)
	return true
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	return Allowed(string(cl.Properties.Username), topic, write)
}

// Allowed is the posguard topic ACL, the same rules as scripts/mosquitto's
// ACL file: "hq" may do anything; "display/{s}" reads its store's alerts and
// status and writes its store's registers' cmd topics; a register "{s}/{r}"
// writes only under its own reg topic and reads policy, denylist, its own cmd
// and its own ack topic. topic may be a subscription filter. Ids are checked
// with wire's rules, so a username can never widen its own rules with a
// wildcard or separator.
func Allowed(user, topic string, write bool) bool {
	if user == wire.HQUsername {
		return true
	}
	topic = stripShare(topic)
	if store, ok := strings.CutPrefix(user, "display/"); ok {
		if wire.ValidateStore(store) != nil {
			return false
		}
		if write {
			return matches(wire.CmdTopic(store, "+"), topic)
		}
		return matches(wire.AlertsTopic(store, "+"), topic) || matches(wire.StatusTopic(store, "+"), topic)
	}
	store, reg, ok := strings.Cut(user, "/")
	if !ok || wire.ValidateStore(store) != nil || wire.ValidateRegister(reg) != nil {
		return false
	}
	if write {
		return matches(wire.Prefix+"/reg/"+user+"/#", topic)
	}
	return matches(wire.Prefix+"/policy/#", topic) ||
		matches(wire.Prefix+"/denylist/#", topic) ||
		matches(wire.CmdTopic(store, reg), topic) ||
		matches(wire.AckTopic(store, reg), topic)
}

// matches reports whether rule covers topic, where topic may itself be a
// subscription filter: a wildcard in the filter is covered only by the same
// or a wider wildcard in the rule, never by a literal. (mochi's own matcher
// lives in its auth hook package, which would pull the archived
// gopkg.in/yaml.v3 into the binary.)
func matches(rule, topic string) bool {
	rs, ts := strings.Split(rule, "/"), strings.Split(topic, "/")
	for i, r := range rs {
		if r == "#" {
			return true
		}
		if i >= len(ts) {
			return false
		}
		if r == "+" {
			if ts[i] == "#" {
				return false
			}
			continue
		}
		if r != ts[i] {
			return false
		}
	}
	return len(rs) == len(ts)
}

func stripShare(topic string) string {
	if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
		if _, filter, ok := strings.Cut(rest, "/"); ok {
			return filter
		}
	}
	return topic
}

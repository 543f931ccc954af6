// Package broker runs an embedded MQTT broker (mochi-mqtt) for one-machine
// setups, the demo and tests. It enforces the same topic ACL as the shipped
// Mosquitto configuration (scripts/mosquitto), so a register confined there is
// confined here too.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mochiclose"
	"github.com/posguard/posguard/wire"
)

// Options configure an embedded broker. Every client must authenticate:
// with a TLS client certificate signed by a CA in TLS.ClientCAs (its
// CommonName is the identity, Mosquitto's use_identity_as_username), or
// with a username and password from Passwords. Start refuses a broker with
// neither, and the broker refuses anonymous clients and a client id other
// than the identity (Mosquitto's use_username_as_clientid), so no client
// can take over another's session.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// TLS, when set, makes the listener TLS. With ClientAuth
	// tls.RequireAndVerifyClientCert (or VerifyClientCertIfGiven and
	// Passwords for clients without one) certificates authenticate.
	TLS *tls.Config
	// Passwords authenticates clients without a certificate.
	Passwords *Passwords
	// AllowRemote permits a plain-TCP listener on a non-loopback address,
	// where passwords would cross the network in clear; off by default.
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
	certs := opts.TLS != nil && (opts.TLS.ClientAuth == tls.RequireAndVerifyClientCert ||
		opts.TLS.ClientAuth == tls.VerifyClientCertIfGiven) && opts.TLS.ClientCAs != nil
	if !certs && opts.Passwords == nil {
		return nil, errors.New("embedded broker: no way to authenticate clients: give a password file or TLS with client certificates (ClientCAs and RequireAndVerifyClientCert)")
	}
	if opts.TLS != nil && opts.Passwords == nil && opts.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("embedded broker: TLS without a password file must require client certificates")
	}
	// Without ClientCAs Go would verify client certificates against the
	// system's roots: any public CA could then issue a certificate for "hq".
	if opts.TLS != nil && opts.TLS.ClientAuth >= tls.VerifyClientCertIfGiven && opts.TLS.ClientCAs == nil {
		return nil, errors.New("embedded broker: client certificates need ClientCAs, the CA that issues them")
	}
	if opts.TLS == nil && !opts.AllowRemote {
		loop, err := httpserve.IsLoopback(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded broker address: %w", err)
		}
		if !loop {
			return nil, fmt.Errorf("embedded broker address %q: plain TCP only on loopback (passwords would cross the network in clear); configure TLS to listen beyond", opts.Addr)
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
	hook := &aclHook{passwords: opts.Passwords, bcrypt: make(chan struct{}, max(1, runtime.NumCPU()/2)), log: log}
	if err := srv.AddHook(hook, nil); err != nil {
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

// aclHook authenticates every client, binds its client id to its
// identity and confines it to the topics that identity may use.
type aclHook struct {
	mqtt.HookBase
	passwords *Passwords
	// bcrypt bounds the password checks running at once: each costs tens
	// of milliseconds of CPU, and anyone who can connect can ask for one.
	bcrypt chan struct{}
	log    *slog.Logger
}

func (h *aclHook) ID() string { return "posguard-acl" }

func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	user, why, ok := h.identity(cl, pk)
	if !ok {
		h.log.Warn("broker refused a client", "remote", cl.Net.Remote, "username", string(pk.Connect.Username), "client_id", cl.ID, "reason", why)
		return false
	}
	// Bound to the identity, a client id cannot be used to take over
	// another client's session or read the commands queued in it.
	if cl.ID != user {
		h.log.Warn("broker refused a client", "remote", cl.Net.Remote, "identity", user, "client_id", cl.ID, "reason", "client id is not the identity")
		return false
	}
	// mochi publishes a will without an ACL check, so a will on a topic
	// the identity may not write (another register's status, the retained
	// policy) is refused here, at connect.
	if pk.Connect.WillFlag && !Allowed(user, pk.Connect.WillTopic, true) {
		h.log.Warn("broker refused a client", "remote", cl.Net.Remote, "identity", user, "will_topic", pk.Connect.WillTopic, "reason", "will on a topic it may not write")
		return false
	}
	cl.Properties.Username = []byte(user)
	return true
}

// identity is the client's authenticated identity: its verified
// certificate's CN, else the username whose password it gave.
func (h *aclHook) identity(cl *mqtt.Client, pk packets.Packet) (user, why string, ok bool) {
	if tc, isTLS := cl.Net.Conn.(*tls.Conn); isTLS {
		// VerifiedChains, not PeerCertificates: only a chain to the
		// configured CA makes the CN mean anything.
		if chains := tc.ConnectionState().VerifiedChains; len(chains) > 0 {
			cn := chains[0][0].Subject.CommonName
			if err := CheckIdentity(cn); err != nil {
				return "", "certificate: " + err.Error(), false
			}
			return cn, "certificate", true
		}
	}
	if h.passwords == nil {
		return "", "no client certificate", false
	}
	if !pk.Connect.UsernameFlag || !pk.Connect.PasswordFlag || len(pk.Connect.Username) == 0 {
		return "", "no username and password", false
	}
	user = string(pk.Connect.Username)
	h.bcrypt <- struct{}{}
	good := h.passwords.check(user, pk.Connect.Password)
	<-h.bcrypt
	if !good {
		return "", "wrong username or password", false
	}
	return user, "password", true
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	return Allowed(string(cl.Properties.Username), topic, write)
}

// Allowed is the posguard topic ACL, the same rules as scripts/mosquitto's
// ACL file: an HQ identity (wire.IsHQUsername: "hq", "hq-NAME") may do
// anything, shared subscriptions included; "display/{s}" reads its store's
// alerts and status, and HQ's chain alerts about the store, and writes its store's registers' cmd topics; a
// register "{s}/{r}" writes only under its own reg topic and its own facts
// topic, and reads policy, denylist, allowlist, its own cmd and ack topics
// and its own store's facts; "bridge/{s}", a store broker's bridge, writes
// what the registers of its store write and reads what they read from HQ
// (policy, denylist, allowlist, their acks) and HQ's chain alerts for the
// store's displays. topic may be a subscription
// filter. No one but HQ may join a shared subscription: a member of HQ's
// group takes its turn of HQ's messages, and one that may not read them
// would make the broker drop every Nth event. Ids are checked with wire's
// rules, so a username can never widen its own rules with a wildcard or
// separator.
func Allowed(user, topic string, write bool) bool {
	if wire.IsHQUsername(user) {
		return true
	}
	if strings.HasPrefix(topic, "$") {
		return false
	}
	if store, ok := strings.CutPrefix(user, "display/"); ok {
		if wire.ValidateStore(store) != nil {
			return false
		}
		if write {
			return matches(wire.CmdTopic(store, "+"), topic)
		}
		return matches(wire.AlertsTopic(store, "+"), topic) || matches(wire.StatusTopic(store, "+"), topic) ||
			matches(wire.StoreAlertsTopic(store), topic)
	}
	if store, ok := strings.CutPrefix(user, "bridge/"); ok {
		if wire.ValidateStore(store) != nil {
			return false
		}
		if write {
			return matches(wire.Prefix+"/reg/"+store+"/#", topic) || matches(wire.FactsFilter(store), topic)
		}
		return readsFromHQ(topic) || matches(wire.AckTopic(store, "+"), topic) || matches(wire.StoreAlertsTopic(store), topic)
	}
	store, reg, ok := strings.Cut(user, "/")
	if !ok || wire.ValidateStore(store) != nil || wire.ValidateRegister(reg) != nil {
		return false
	}
	if write {
		return matches(wire.Prefix+"/reg/"+user+"/#", topic) || matches(wire.FactsTopic(store, reg), topic)
	}
	return readsFromHQ(topic) ||
		matches(wire.CmdTopic(store, reg), topic) ||
		matches(wire.AckTopic(store, reg), topic) ||
		matches(wire.FactsFilter(store), topic)
}

// readsFromHQ: the signed policy, denylist and allowlist, which every
// register reads. Only HQ may write them.
func readsFromHQ(topic string) bool {
	return matches(wire.Prefix+"/policy/#", topic) || matches(wire.Prefix+"/denylist/#", topic) ||
		matches(wire.Prefix+"/allowlist/#", topic)
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

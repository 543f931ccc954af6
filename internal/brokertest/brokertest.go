// Package brokertest runs a real MQTT broker (mochi-mqtt, in-process) on
// 127.0.0.1 for tests, and can stop and restart it on the same port so
// reconnect behaviour is tested against the real thing.
package brokertest

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/internal/mochiclose"
)

// Broker is a running (or stopped) embedded broker.
type Broker struct {
	tb   testing.TB
	tls  *tls.Config
	mu   sync.Mutex
	srv  *mqtt.Server
	tcp  *listeners.TCP
	addr string // host:port, fixed after the first start
	// refuse, when set, denies the topics or filters it returns true for
	// (write: publish; else subscribe).
	refuse func(topic string, write bool) bool
}

// Start runs a broker on an ephemeral 127.0.0.1 port and stops it when the
// test ends.
func Start(tb testing.TB) *Broker {
	tb.Helper()
	return StartRefusing(tb, nil)
}

// StartRefusing is Start with a broker that denies what refuse returns
// true for, as a broker with a stricter ACL would.
func StartRefusing(tb testing.TB, refuse func(topic string, write bool) bool) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, refuse: refuse}
	if err := b.start("127.0.0.1:0"); err != nil {
		tb.Fatalf("start broker: %v", err)
	}
	tb.Cleanup(b.Stop)
	return b
}

// StartTLS is Start with a TLS listener (see PKI for certificates).
func StartTLS(tb testing.TB, cfg *tls.Config) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, tls: cfg}
	if err := b.start("127.0.0.1:0"); err != nil {
		tb.Fatalf("start TLS broker: %v", err)
	}
	tb.Cleanup(b.Stop)
	return b
}

// URL is the broker address for paho: tcp://127.0.0.1:PORT, or ssl://… for
// a TLS broker.
func (b *Broker) URL() string {
	if b.tls != nil {
		return "ssl://" + b.addr
	}
	return "tcp://" + b.addr
}

// Addr is host:port.
func (b *Broker) Addr() string { return b.addr }

// Stop closes the broker and every client connection. Idempotent.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = mochiclose.Close(b.srv, b.tcp)
		b.srv, b.tcp = nil, nil
	}
}

// Restart starts a fresh broker on the same port (retained messages and
// sessions are gone, as after a real broker restart without persistence).
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	if err := b.start(b.addr); err != nil {
		b.tb.Fatalf("restart broker on %s: %v", b.addr, err)
	}
}

// Publish sends a message from the broker's inline client, as a register
// would (without needing a client connection).
func (b *Broker) Publish(topic string, payload []byte, retain bool) error {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	if srv == nil {
		return fmt.Errorf("publish %s: broker stopped", topic)
	}
	if err := srv.Publish(topic, payload, retain, 1); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

func (b *Broker) start(addr string) error {
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(&allowAll{refuse: b.refuse}, nil); err != nil {
		return fmt.Errorf("allow hook: %w", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr, TLSConfig: b.tls})
	if err := srv.AddListener(l); err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	b.mu.Lock()
	b.srv, b.tcp, b.addr = srv, l, l.Address()
	b.mu.Unlock()
	return nil
}

// allowAll lets every client connect and use every topic but those refuse
// (if set) denies. mochi's own
// auth.AllowHook lives in a package that pulls in gopkg.in/yaml.v3, which
// this module does not use.
type allowAll struct {
	mqtt.HookBase
	refuse func(topic string, write bool) bool
}

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	return h.refuse == nil || !h.refuse(topic, write)
}

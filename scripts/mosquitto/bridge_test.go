package mosquitto_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/wire"
)

// renderStoreConfig is the configuration of a store broker: the shipped
// mosquitto.conf as renderConfig makes it, followed by the store-bridge
// conf gen-certs.sh -b wrote for store, pointed at HQ's broker at hqAddr
// and at the test's certificates. restart_timeout 1 (no backoff) only
// makes the test quicker to see the line healed.
func renderStoreConfig(t *testing.T, certs, state string, port int, store, hqAddr string) string {
	t.Helper()
	template, err := os.ReadFile("store-bridge.conf")
	if err != nil {
		t.Fatal(err)
	}
	generated, err := os.ReadFile(filepath.Join(certs, "store-bridge."+store+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(string(template), "{STORE}", store); string(generated) != want {
		t.Fatalf("gen-certs.sh wrote store-bridge.%s.conf:\n%s\nwant the shipped template for %s:\n%s", store, generated, store, want)
	}
	bridge := mosquittotest.ReplaceSettings(t, "store-bridge.conf", generated, map[string]string{
		"address":         "address " + hqAddr,
		"bridge_cafile":   "bridge_cafile " + filepath.Join(certs, "ca.crt"),
		"bridge_certfile": "bridge_certfile " + filepath.Join(certs, "bridge."+store+".crt"),
		"bridge_keyfile":  "bridge_keyfile " + filepath.Join(certs, "bridge."+store+".key"),
		"restart_timeout": "restart_timeout 1",
	})
	path := filepath.Join(state, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(mosquittotest.ConfigText(t, certs, state, port)+bridge), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sessionClient connects as HQ does: a persistent session that survives
// its broker's restart, reconnecting on its own, every message to one
// handler set before connecting.
func sessionClient(t *testing.T, addr, certs, name string, filters ...string) *client {
	t.Helper()
	cfg := mosquittotest.TLSConfig(t, certs, certs, name)
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	c := &client{name: name, got: make(chan msg, 1000)}
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetClientID(leaf.Subject.CommonName).
		SetTLSConfig(cfg).SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.got <- msg{m.Topic(), string(m.Payload())} })
	c.Client = mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", name, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	for _, f := range filters {
		if tok := c.Subscribe(f, 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("%s subscribe %s: %v", name, f, tok.Error())
		}
	}
	return c
}

// expectAll waits for every message of want, in any order (they come from
// several registers); a message that is not in want fails, a repeat of one
// it got before (QoS 1 may repeat, across a restart too) does not.
func (c *client) expectAll(t *testing.T, timeout time.Duration, want ...msg) {
	t.Helper()
	missing := make(map[msg]bool, len(want))
	for _, m := range want {
		missing[m] = true
	}
	if c.seen == nil {
		c.seen = make(map[msg]bool)
	}
	deadline := time.After(timeout)
	for len(missing) > 0 {
		select {
		case m := <-c.got:
			if !missing[m] && !c.seen[m] {
				t.Fatalf("%s got %s %q, not one it waits for", c.name, m.topic, m.payload)
			}
			delete(missing, m)
			c.seen[m] = true
		case <-deadline:
			t.Fatalf("%s: %d of %d messages never arrived: %v", c.name, len(missing), len(want), missing)
		}
	}
}

// awaitInbound waits until the bridge has subscribed at HQ: until an ack
// HQ publishes for s1/r1 reaches reg, connected to the store broker.
func awaitInbound(t *testing.T, hq, reg *client) {
	t.Helper()
	for i := 0; ; i++ {
		hq.publish(t, wire.AckTopic("s1", "r1"), fmt.Sprint("probe ", i), false)
		select {
		case m := <-reg.got:
			if !strings.HasPrefix(m.payload, "probe ") {
				t.Fatalf("s1/r1 got %s %q, want an ack probe", m.topic, m.payload)
			}
		case <-time.After(200 * time.Millisecond):
			if i < 50 {
				continue
			}
			t.Fatal("no ack from HQ reached the store")
		}
		break
	}
	hq.publish(t, wire.AckTopic("s1", "r1"), "probed", false)
	for m := range reg.got {
		if m.payload == "probed" {
			break
		}
	}
}

// TestStoreBridge runs a store broker bridged to HQ's broker, both real
// Mosquitto with the shipped configuration, ACL and certificates: the tills
// share facts at the store; their events, facts and status reach HQ; HQ's
// acks and retained policy reach the tills; and while the line to HQ is cut
// (HQ's broker stopped) the tills still share, and every event published
// meanwhile reaches HQ once the line is back.
func TestStoreBridge(t *testing.T) {
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	mosquittotest.GenCerts(t, certs, "-q", "b", "-b", "s1", "-r", "s1/r1", "-r", "s1/r2", "-r", "s1/r3")
	hqState, storeState := t.TempDir(), t.TempDir()
	hqPort, storePort := mosquittotest.FreePort(t), mosquittotest.FreePort(t)
	hqConf := mosquittotest.WriteConfig(t, certs, hqState, hqPort)
	hqBroker := mosquittotest.Run(t, bin, hqConf, hqPort, "HQ mosquitto")
	hqAddr := hqBroker.Addr
	store := mosquittotest.Run(t, bin, renderStoreConfig(t, certs, storeState, storePort, "s1", hqAddr), storePort, "store mosquitto")

	hq := sessionClient(t, hqAddr, certs, "hq", wire.HQEventsFilter(""), wire.HQStatusFilter, wire.HQFactsFilter)
	r1 := newClient(t, store.Addr, certs, "reg.s1.r1")
	r1.subscribe(t, append(wire.AgentFilters("s1", "r1"), wire.FactsFilter("s1"))...)
	r2 := newClient(t, store.Addr, certs, "reg.s1.r2")
	r2.subscribe(t, append(wire.AgentFilters("s1", "r2"), wire.FactsFilter("s1"))...)
	mosquittotest.WaitLog(t, hqBroker.Logs, "as "+wire.BridgeUsername("s1"))

	awaitInbound(t, hq, r1)
	// A policy HQ pushes stays retained at the store broker, for a till
	// connecting later.
	policy := msg{wire.PolicyTopic(wire.ScopeAll), "policy v1"}
	hq.publish(t, policy.topic, policy.payload, true)
	r1.expect(t, policy)
	r2.expect(t, policy)
	late := newClient(t, store.Addr, certs, "reg.s1.r3")
	late.subscribe(t, wire.PolicyTopic(wire.ScopeAll))
	late.expect(t, policy)

	// Out to HQ: events, facts and the retained status.
	status := msg{wire.StatusTopic("s1", "r1"), "r1 online"}
	r1.publish(t, status.topic, status.payload, true)
	var toHQ []msg
	for i := range 5 {
		toHQ = append(toHQ, msg{wire.EventsTopic("s1", "r1"), fmt.Sprint("event ", i)})
	}
	for _, m := range toHQ {
		r1.publish(t, m.topic, m.payload, false)
	}
	fact := msg{wire.FactsTopic("s1", "r1"), "fact before the cut"}
	r1.publish(t, fact.topic, fact.payload, false)
	r1.expect(t, fact)
	r2.expect(t, fact)
	hq.expectAll(t, wait, append(toHQ, status, fact)...)

	// The line to HQ is cut.
	hqBroker.Stop()
	toHQ = nil
	for i := range 20 {
		reg, c := "r1", r1
		if i%2 == 1 {
			reg, c = "r2", r2
		}
		ev := msg{wire.EventsTopic("s1", reg), fmt.Sprint("event during the cut ", i)}
		c.publish(t, ev.topic, ev.payload, false)
		toHQ = append(toHQ, ev)
		if i%5 == 0 {
			// The tills still share.
			f := msg{wire.FactsTopic("s1", reg), fmt.Sprint("fact during the cut ", i)}
			c.publish(t, f.topic, f.payload, false)
			r1.expect(t, f)
			r2.expect(t, f)
			toHQ = append(toHQ, f)
		}
	}

	// The line heals: HQ's broker is back on its address, with its
	// persistent sessions; the bridge delivers what the store queued.
	hqBroker = mosquittotest.Run(t, bin, hqConf, hqPort, "HQ mosquitto, restarted")
	hq.expectAll(t, 4*wait, toHQ...)

	// The in direction works again, and the status stayed retained at HQ.
	// The bridge subscribed at HQ again, so the retained policy came again.
	ack := msg{wire.AckTopic("s1", "r2"), "ack after the cut"}
	hq.publish(t, ack.topic, ack.payload, false)
	r2.seen = map[msg]bool{policy: true}
	r2.expectAll(t, wait, ack)
	fleet := newClient(t, hqAddr, certs, "hq-b")
	fleet.subscribe(t, wire.HQStatusFilter)
	fleet.expect(t, status)

	// Repeats aside (the bridge, subscribing again at the store, forwards
	// the retained status again), HQ got nothing else.
	for {
		select {
		case m := <-hq.got:
			if !hq.seen[m] {
				t.Errorf("HQ got an unexpected %s %q", m.topic, m.payload)
			}
			continue
		default:
		}
		break
	}
}

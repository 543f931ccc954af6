package mosquitto_test

import (
	"crypto/tls"
	"testing"

	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/wire"
)

// TestStoreBridgeToEmbeddedHQ: the shipped store bridge also works when
// HQ's broker is the embedded one (posguard hq --embed-broker) with the
// certificates of gen-certs.sh: the bridge authenticates as bridge/s1,
// events go out, acks and the retained policy come in and the policy
// stays retained at the store broker.
func TestStoreBridgeToEmbeddedHQ(t *testing.T) {
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	mosquittotest.GenCerts(t, certs, "-b", "s1", "-r", "s1/r1", "-r", "s1/r2")
	// The server's certificate and the CA, as HQ would configure them
	// (--embed-cert, --embed-key, --embed-client-ca).
	server := mosquittotest.TLSConfig(t, certs, certs, "server")
	b, err := broker.Start(broker.Options{TLS: &tls.Config{Certificates: server.Certificates, ClientCAs: server.RootCAs,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	state, port := t.TempDir(), mosquittotest.FreePort(t)
	store := mosquittotest.Run(t, bin, renderStoreConfig(t, certs, state, port, "s1", b.Addr()), port, "store mosquitto")

	hq := newClient(t, b.Addr(), certs, "hq")
	hq.subscribe(t, wire.HQEventsFilter(""), wire.HQFactsFilter)
	r1 := newClient(t, store.Addr, certs, "reg.s1.r1")
	r1.subscribe(t, append(wire.AgentFilters("s1", "r1"), wire.FactsFilter("s1"))...)
	awaitInbound(t, hq, r1)

	policy := msg{wire.PolicyTopic(wire.ScopeAll), "policy v1"}
	hq.publish(t, policy.topic, policy.payload, true)
	r1.expect(t, policy)
	for _, m := range []msg{{wire.EventsTopic("s1", "r1"), "event"}, {wire.FactsTopic("s1", "r1"), "fact"}} {
		r1.publish(t, m.topic, m.payload, false)
		hq.expect(t, m)
	}
	r1.expect(t, msg{wire.FactsTopic("s1", "r1"), "fact"})
	late := newClient(t, store.Addr, certs, "reg.s1.r2")
	late.subscribe(t, wire.PolicyTopic(wire.ScopeAll))
	late.expect(t, policy)
}

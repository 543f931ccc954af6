package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

const wait = mosquittotest.Wait

type node struct{ client, route, mqtt int }

// cluster generates the shipped configuration for three nodes on loopback
// and runs them with the machine's nats-server.
func cluster(t *testing.T) (dir string, nodes []node) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	testenv.Need(t, "nats-server", err)
	script := mosquittotest.Path(t, "scripts/nats/gen-cluster.sh")
	if _, err := os.ReadFile(script); err != nil { // so go test's cache sees it change
		t.Fatal(err)
	}
	dir = t.TempDir()
	args := []string{"-o", dir, "-s", filepath.Join(dir, "js"), "-q", "push", "-d", "S001", "-r", "S001/R1", "-r", "S001/R2"}
	for i := range 3 {
		n := node{mosquittotest.FreePort(t), mosquittotest.FreePort(t), mosquittotest.FreePort(t)}
		nodes = append(nodes, n)
		args = append(args, "-N", fmt.Sprintf("n%d=127.0.0.1:%d:%d:%d", i+1, n.client, n.route, n.mqtt))
	}
	if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
		t.Fatalf("gen-cluster.sh: %v\n%s", err, out)
	}
	for i, n := range nodes {
		mosquittotest.Run(t, bin, filepath.Join(dir, fmt.Sprintf("node-n%d.conf", i+1)), n.client, fmt.Sprintf("nats n%d", i+1))
	}
	return dir, nodes
}

func brokers(nodes []node, scheme string, port func(node) int) string {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, fmt.Sprintf("%s://127.0.0.1:%d", scheme, port(n)))
	}
	return strings.Join(urls, ",")
}

// mqttClient connects to one node over MQTT with a certificate of dir.
func mqttClient(t *testing.T, dir, name string, n node, id string) paho.Client {
	t.Helper()
	cfg := mosquittotest.TLSConfig(t, dir, dir, name)
	cfg.ServerName = "127.0.0.1"
	c := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", n.mqtt)).
		SetClientID(id).SetTLSConfig(cfg).SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(wait))
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", name, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func subscribe(t *testing.T, c paho.Client, topic string) (chan paho.Message, byte) {
	t.Helper()
	got := make(chan paho.Message, 16)
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m })
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	return got, tok.(*paho.SubscribeToken).Result()[topic]
}

func publish(t *testing.T, c paho.Client, topic string, retain bool, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, retain, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// The shipped cluster configuration: certificates map to users, HQ
// consumes the registers' events through JetStream over TLS and acks them
// over MQTT, and each identity is confined as on Mosquitto: a register
// cannot publish a policy, read another register's acks or write another
// register's events.
func TestShippedClusterConfig(t *testing.T) {
	dir, nodes := cluster(t)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	crt := func(name string) (string, string) {
		return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	hqCert, hqKey := crt("hq")
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("HQ log:\n%s", logs.String())
		}
	})
	svc, err := hq.New(hq.Config{
		MQTT: mqttconn.Config{Broker: brokers(nodes, "ssl", func(n node) int { return n.mqtt }),
			CAFile: filepath.Join(dir, "ca.crt"), CertFile: hqCert, KeyFile: hqKey},
		JetStream: &hq.JetStream{URLs: brokers(nodes, "tls", func(n node) int { return n.client }),
			CAFile: filepath.Join(dir, "ca.crt"), CertFile: hqCert, KeyFile: hqKey},
		Store: st, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case <-svc.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("HQ did not connect and consume on the cluster")
	}

	r1 := mqttClient(t, dir, "reg.S001.R1", nodes[1], "S001/R1")
	r2 := mqttClient(t, dir, "reg.S001.R2", nodes[2], "S001/R2")
	push := mqttClient(t, dir, "hq-push", nodes[0], "hq-push")
	acks, _ := subscribe(t, r1, wire.AckTopic("S001", "R1"))
	policies, _ := subscribe(t, r2, wire.PolicyTopic(wire.ScopeAll))

	// A register's event reaches HQ through the stream and comes back acked.
	ev := event.Event{ID: event.ID("S001", "R1", "e1", 1), Seq: 1, Type: event.Decision, Store: "S001", Register: "R1",
		At: time.Now().UTC(), SaleID: "sale-1",
		Request:  &policy.Request{SaleID: "sale-1", Store: "S001", Register: "R1", At: time.Now().UTC()},
		Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "p", Version: 1}}}
	b, err := event.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, r1, wire.EventsTopic("S001", "R1"), false, b)
	select {
	case m := <-acks:
		a, err := wire.ParseAck(m.Payload())
		if err != nil || len(a.IDs) != 1 || a.IDs[0] != ev.ID {
			t.Fatalf("ack %s: %+v %v", m.Payload(), a, err)
		}
	case <-time.After(wait):
		t.Fatal("no ack from HQ through the cluster")
	}

	// Only HQ identities publish policies.
	publish(t, r1, wire.PolicyTopic(wire.ScopeAll), true, []byte("forged by a register"))
	publish(t, push, wire.PolicyTopic(wire.ScopeAll), true, []byte("from hq-push"))
	select {
	case m := <-policies:
		if string(m.Payload()) != "from hq-push" {
			t.Fatalf("a register's policy reached another register: %q", m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("hq-push's policy did not arrive")
	}

	// A register reads neither another's acks nor writes its events.
	if _, code := subscribe(t, r1, wire.AckTopic("S001", "R2")); code != 0x80 {
		t.Errorf("R1 subscribing to R2's acks: SUBACK %#x, want 0x80 (refused)", code)
	}
	spoof := ev
	spoof.ID, spoof.Seq, spoof.Register, spoof.Request = event.ID("S001", "R2", "e1", 7), 7, "R2", &policy.Request{SaleID: "sale-1", Store: "S001", Register: "R2", At: ev.At}
	b, _ = event.Marshal(spoof)
	publish(t, r1, wire.EventsTopic("S001", "R2"), false, b)
	// R2's own event after it: once HQ has that, the spoof had its chance.
	own := spoof
	own.ID, own.Seq = event.ID("S001", "R2", "e1", 8), 8
	b, _ = event.Marshal(own)
	publish(t, r2, wire.EventsTopic("S001", "R2"), false, b)
	deadline := time.Now().Add(wait)
	for {
		evs, err := st.Events(context.Background(), store.Query{Register: "R2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			for _, e := range evs {
				if e.ID == spoof.ID {
					t.Fatal("R1 wrote an event on R2's topic")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("R2's own event never reached HQ")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Package natstest runs NATS servers inside a test: a cluster of nodes on
// loopback, each with JetStream and the MQTT gateway on ephemeral ports, so
// tests exercise posguard against the clustered broker it ships a
// configuration for (scripts/nats), not a fake.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats-server/v2/server"
)

// Node is one server of a Cluster.
type Node struct {
	Name  string
	opts  *server.Options
	srv   *server.Server
	mqtt  string // tcp://127.0.0.1:port, kept across restarts
	nats  string // nats://127.0.0.1:port, kept across restarts
	route int
}

// MQTTURL is the node's MQTT listener.
func (n *Node) MQTTURL() string { return n.mqtt }

// NATSURL is the node's client listener.
func (n *Node) NATSURL() string { return n.nats }

// Cluster is a set of NATS nodes routed to each other.
type Cluster struct {
	tb    testing.TB
	mu    sync.Mutex
	Nodes []*Node
}

// freePort reserves an ephemeral port on loopback and frees it for the
// server to take: the nodes need one another's route ports before any of
// them starts, and a restarted node must come back on the same ports.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("reserve port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs an n-node cluster (n = 1: a single server with JetStream and
// MQTT) and stops it when the test ends. MQTT retained messages and
// sessions are kept with min(n, 3) replicas.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	routes := make([]*url.URL, n)
	for i := range n {
		node := &Node{Name: fmt.Sprintf("n%d", i+1), route: freePort(tb)}
		node.mqtt = "tcp://127.0.0.1:" + strconv.Itoa(freePort(tb))
		node.nats = "nats://127.0.0.1:" + strconv.Itoa(freePort(tb))
		routes[i] = &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(node.route)}
		c.Nodes = append(c.Nodes, node)
	}
	dir := tb.TempDir()
	for _, node := range c.Nodes {
		mport, _ := strconv.Atoi(node.mqtt[len("tcp://127.0.0.1:"):])
		nport, _ := strconv.Atoi(node.nats[len("nats://127.0.0.1:"):])
		o := &server.Options{
			ServerName: node.Name,
			Host:       "127.0.0.1",
			Port:       nport,
			JetStream:  true,
			StoreDir:   dir + "/" + node.Name,
			NoSigs:     true,
			NoLog:      true,
		}
		o.MQTT.Host = "127.0.0.1"
		o.MQTT.Port = mport
		// As scripts/nats/gen-cluster.sh ships it: sessions, retained
		// messages and each subscription's consumer replicated (see there).
		o.MQTT.StreamReplicas = min(n, 3)
		o.MQTT.ConsumerReplicas = min(n, 3)
		if n > 1 {
			o.Cluster.Name = "posguard"
			o.Cluster.Host = "127.0.0.1"
			o.Cluster.Port = node.route
			o.Routes = routes
		}
		node.opts = o
	}
	var wg sync.WaitGroup
	for _, node := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.start(node) }()
	}
	wg.Wait()
	tb.Cleanup(c.Stop)
	c.WaitJetStream()
	c.waitMQTT()
	return c
}

// waitMQTT waits until an MQTT client can connect: the gateway creates its
// streams (sessions, retained messages) at the first connection, and
// until they have leaders it drops connections, which every client would
// then have to retry.
func (c *Cluster) waitMQTT() {
	c.tb.Helper()
	probe := paho.NewClient(paho.NewClientOptions().AddBroker(c.Nodes[0].mqtt).SetClientID("natstest-probe").
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond))
	tok := probe.Connect()
	if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		probe.Disconnect(0)
		c.tb.Fatalf("nats cluster: no MQTT connection within 60s: %v", tok.Error())
	}
	probe.Disconnect(100)
}

func (c *Cluster) start(n *Node) {
	c.tb.Helper()
	srv, err := server.NewServer(n.opts)
	if err != nil {
		c.tb.Errorf("nats node %s: %v", n.Name, err)
		return
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		c.tb.Errorf("nats node %s: not ready within 20s", n.Name)
		return
	}
	c.mu.Lock()
	n.srv = srv
	c.mu.Unlock()
}

// WaitJetStream waits until JetStream has a meta leader (a cluster that
// can create streams) on every running node.
func (c *Cluster) WaitJetStream() {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		c.mu.Lock()
		for _, n := range c.Nodes {
			if n.srv != nil && !n.srv.JetStreamIsCurrent() {
				ok = false
			}
		}
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.tb.Fatalf("nats cluster: JetStream not current within 30s")
}

// Kill stops node i at once, as a crash would (its store stays on disk).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	srv := c.Nodes[i].srv
	c.Nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart brings node i back on its former ports and store.
func (c *Cluster) Restart(i int) { c.start(c.Nodes[i]) }

// MQTTURLs lists every node's MQTT listener, the way a register's
// configuration names the cluster.
func (c *Cluster) MQTTURLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.mqtt)
	}
	return out
}

// NATSURLs lists every node's client listener.
func (c *Cluster) NATSURLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.nats)
	}
	return out
}

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// WaitRetained waits until every running node hands the retained message
// on topic to a new subscriber. The MQTT gateway keeps retained messages in
// a replicated stream but each node learns of a new one asynchronously
// (through its own consumer of that stream), so for a moment after a
// publish a client subscribing at another node may get nothing: a test
// that starts registers right after a push waits here first. DESIGN
// "Clustered broker" says what this means for a register.
func (c *Cluster) WaitRetained(topic string) {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	c.mu.Lock()
	var urls []string
	for _, n := range c.Nodes {
		if n.srv != nil {
			urls = append(urls, n.mqtt)
		}
	}
	c.mu.Unlock()
	for i, url := range urls {
		for attempt := 1; ; attempt++ {
			_, err := ReadRetained(url, fmt.Sprintf("natstest-retained-%d-%d", i, attempt), topic, 5*time.Second)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.tb.Fatalf("nats cluster: %s does not serve the retained %s within 30s: %v", url, topic, err)
			}
		}
	}
}

// ReadRetained connects a fresh MQTT client (clean session, id id) to url,
// subscribes to filter and returns the first message, which for a topic
// with a retained message is that message.
func ReadRetained(url, id, filter string, wait time.Duration) ([]byte, error) {
	got := make(chan []byte, 1)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond))
	defer sub.Disconnect(100)
	if tok := sub.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", url, tok.Error())
	}
	tok := sub.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Payload():
		default:
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe %s at %s: %v", filter, url, tok.Error())
	}
	select {
	case p := <-got:
		return p, nil
	case <-time.After(wait):
		return nil, fmt.Errorf("no retained message on %s at %s within %s", filter, url, wait)
	}
}

package mqttconn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/posguard/posguard/internal/brokertest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{Config{Broker: "tcp://127.0.0.1:1883"}, ""},
		{Config{Broker: "ssl://broker:8883", CertFile: "c.pem", KeyFile: "k.pem"}, ""},
		{Config{}, "broker: required"},
		{Config{Broker: "http://broker"}, `scheme "http"`},
		{Config{Broker: "tcp://"}, "has no host"},
		{Config{Broker: "tcp://b:1883", CertFile: "c.pem"}, "give both or neither"},
		{Config{Broker: "127.0.0.1:1883"}, `broker: "127.0.0.1:1883" has no scheme: write tcp://127.0.0.1:1883 (or ssl://… for TLS)`},
		{Config{Broker: "localhost:1883"}, `broker: "localhost:1883" has no scheme: write tcp://localhost:1883`},
		{Config{Broker: "hq:s3cret@broker:1883"}, `broker: "broker:1883" has no scheme: write tcp://broker:1883`},
		{Config{Broker: "tcp://hq:s3cret@[::1"}, "is not a URL"},
		{Config{Broker: "tcp://n1:1883,tcp://n2:1883, tcp://n3:1883"}, ""},
		{Config{Broker: "tcp://n1:1883,n2:1883"}, `broker: "n2:1883" has no scheme`},
		{Config{Broker: " , "}, "broker: required"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one containing %q", tt.cfg, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%+v: error %v shows the password", tt.cfg, err)
		}
	}
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if cfg, err := (Config{Broker: "tcp://b:1"}).TLS(); cfg != nil || err != nil {
		t.Fatalf("no TLS files: %v, %v; want nil, nil", cfg, err)
	}
	if _, err := (Config{CAFile: notPEM}).TLS(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := (Config{CAFile: filepath.Join(dir, "missing")}).TLS(); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := (Config{CertFile: notPEM, KeyFile: notPEM}).TLS(); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("bad client certificate: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://127.0.0.1:1883":         "tcp://127.0.0.1:1883",
		"ssl://hq:s3cret@broker:8883":  "ssl://broker:8883",
		"tcp://hq@broker:1883":         "tcp://broker:1883",
		"tcp://hq:s3cret@[::1":         "tcp://[::1",
		"hq:s3cret@broker:1883":        "broker:1883",
		"tcp://hq:s3cr@t@broker:1883/": "tcp://broker:1883/",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// What a persistent session queued while the client was away arrives the
// moment it connects, before OnConnect has subscribed again: Handler must
// take it then. OnConnect is held here until every message is in, so the
// test does not depend on who wins the race.
func TestBrokersAndRedacted(t *testing.T) {
	c := Config{Broker: "tcp://a:s3cret@n1:1883, ssl://n2:8883,"}
	if got, want := c.Brokers(), []string{"tcp://a:s3cret@n1:1883", "ssl://n2:8883"}; !slices.Equal(got, want) {
		t.Errorf("Brokers() = %q, want %q", got, want)
	}
	if got, want := c.Redacted(), "tcp://n1:1883,ssl://n2:8883"; got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
}

// Clients spread over the nodes of a cluster by their id, and each tries
// every node in turn from its own.
func TestOptionsSpreadClientsOverBrokers(t *testing.T) {
	cfg := Config{Broker: "tcp://n1:1883,tcp://n2:1883,tcp://n3:1883"}
	first := map[string]int{}
	for i := range 300 {
		o, err := cfg.Options(Client{ID: fmt.Sprintf("S%03d-R1", i)})
		if err != nil {
			t.Fatal(err)
		}
		if len(o.Servers) != 3 {
			t.Fatalf("%d servers, want 3", len(o.Servers))
		}
		hosts := map[string]bool{}
		for _, u := range o.Servers {
			hosts[u.Host] = true
		}
		if len(hosts) != 3 {
			t.Fatalf("servers %v: not every node once", o.Servers)
		}
		first[o.Servers[0].Host]++
	}
	for _, h := range []string{"n1:1883", "n2:1883", "n3:1883"} {
		if first[h] < 60 { // 100 expected each
			t.Errorf("%d of 300 clients start at %s: %v", first[h], h, first)
		}
	}
}

// A client named with two brokers connects to the one that is up, and
// comes back through the other when its broker goes away.
func TestFailoverBetweenBrokers(t *testing.T) {
	b1, b2 := brokertest.Start(t), brokertest.Start(t)
	cfg := Config{Broker: b1.URL() + "," + b2.URL(), MaxReconnect: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connected := make(chan struct{}, 4)
	o, err := cfg.Options(Client{ID: "reg", KeepAlive: time.Second, OnConnect: func(paho.Client) { connected <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(100)
	<-connected
	// Both are up, so the client is on the first of its list: stop that
	// one; it must come back on the other.
	r := c.OptionsReader()
	on := r.Servers()[0].Host
	if on == b1.Addr() {
		b1.Stop()
	} else {
		b2.Stop()
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("no reconnection to the other broker")
	}
	if !c.IsConnectionOpen() {
		t.Fatal("not connected after failover")
	}
}

func TestQueuedSessionReachesHandlerBeforeOnConnect(t *testing.T) {
	b := brokertest.Start(t)
	cfg := Config{Broker: b.URL()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := cfg.Options(Client{ID: "c1", Handler: func(paho.Client, paho.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Wait(ctx, c.Subscribe("t/#", 1, nil)); err != nil {
		t.Fatal(err)
	}
	c.Disconnect(100)
	const n = 5
	for i := range n {
		if err := b.Publish(fmt.Sprintf("t/%d", i), []byte("queued"), false); err != nil {
			t.Fatal(err)
		}
	}

	got := make(chan string, n)
	release := make(chan struct{})
	defer close(release)
	o, err = cfg.Options(Client{ID: "c1",
		Handler:   func(_ paho.Client, m paho.Message) { got <- m.Topic() },
		OnConnect: func(paho.Client) { <-release },
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err = Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(100)
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case topic := <-got:
			seen[topic] = true
		case <-ctx.Done():
			t.Fatalf("%d of %d queued messages reached the handler: %v", len(seen), n, seen)
		}
	}
}

// The store keeps its own copy of a publish, so paho's resume can mark the
// stored one DUP without touching the packet on its way out.
func TestStoreCopiesPublishes(t *testing.T) {
	s := newStore()
	s.Open()
	defer s.Close()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.MessageID, p.TopicName, p.Payload = 1, 7, "t", []byte("x")
	s.Put("o.7", p)
	got := s.Get("o.7").(*packets.PublishPacket)
	if got == p {
		t.Fatal("the store holds the caller's packet itself")
	}
	got.Dup = true
	if p.Dup || got.MessageID != 7 || string(got.Payload) != "x" {
		t.Fatalf("copy %+v, original dup %v", got, p.Dup)
	}
}

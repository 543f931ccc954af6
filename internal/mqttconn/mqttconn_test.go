package mqttconn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

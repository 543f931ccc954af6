package broker

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"hq", "posguard/v1/policy/all", true, true},
		{"hq", "$share/g/posguard/v1/reg/+/+/events", false, true},
		{"s1/r1", "posguard/v1/reg/s1/r1/events", true, true},
		{"s1/r1", "posguard/v1/reg/s1/r1/status", true, true},
		{"s1/r1", "posguard/v1/reg/s1/r2/events", true, false},
		{"s1/r1", "posguard/v1/reg/s2/r1/events", true, false},
		{"s1/r1", "posguard/v1/policy/all", true, false},
		{"s1/r1", "posguard/v1/denylist/delta", true, false},
		{"s1/r1", "posguard/v1/ack/s1/r1", true, false},
		{"s1/r1", "posguard/v1/policy/#", false, true},
		{"s1/r1", "posguard/v1/denylist/snapshot", false, true},
		{"s1/r1", "posguard/v1/reg/s1/r1/cmd", false, true},
		{"s1/r1", "posguard/v1/reg/s1/r2/cmd", false, false},
		{"s1/r1", "posguard/v1/reg/s1/+/cmd", false, false},
		{"s1/r1", "posguard/v1/reg/#", false, false},
		{"s1/r1", "posguard/v1/ack/s1/r1", false, true},
		{"s1/r1", "posguard/v1/ack/s1/+", false, false},
		{"s1/r1", "#", false, false},
		{"s1/+", "posguard/v1/reg/s1/x/events", true, false},
		{"s1/r1/x", "posguard/v1/reg/s1/r1/x/events", true, false},
		{"", "posguard/v1/policy/all", false, false},
		{"display/s1", "posguard/v1/reg/s1/+/alerts", false, true},
		{"display/s1", "posguard/v1/reg/s1/r3/status", false, true},
		{"display/s1", "posguard/v1/reg/s2/+/alerts", false, false},
		{"display/s1", "posguard/v1/reg/+/+/alerts", false, false},
		{"display/s1", "posguard/v1/reg/s1/r1/events", false, false},
		{"display/s1", "posguard/v1/reg/s1/r1/cmd", true, true},
		{"display/s1", "posguard/v1/reg/s2/r1/cmd", true, false},
		{"display/s1", "posguard/v1/reg/s1/r1/alerts", true, false},
		{"display/+", "posguard/v1/reg/x/+/alerts", false, false},
		// Reserved and malformed ids, by wire's rules.
		{"all/r1", "posguard/v1/reg/all/r1/events", true, false},
		{"display/all", "posguard/v1/reg/all/+/alerts", false, false},
		{"s.1/r1", "posguard/v1/reg/s.1/r1/events", true, false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.user, tt.topic, tt.write); got != tt.want {
			t.Errorf("Allowed(%q, %q, write=%v) = %v, want %v", tt.user, tt.topic, tt.write, got, tt.want)
		}
	}
}

func connect(t *testing.T, url, user string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(user + "-" + t.Name()).SetUsername(user).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestACLOverBroker checks the ACL where it matters: through a running
// broker, a register's publish outside its own topics never reaches HQ.
func TestACLOverBroker(t *testing.T) {
	b, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	hq := connect(t, b.URL(), "hq")
	got := make(chan string, 16)
	tok := hq.Subscribe("posguard/v1/#", 1, func(_ paho.Client, m paho.Message) {
		got <- fmt.Sprintf("%s %s", m.Topic(), m.Payload())
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("hq subscribe: %v", tok.Error())
	}

	// QoS 0, because mochi answers a refused QoS 1 publish from an MQTT
	// 3.1.1 client by disconnecting it; either way nothing may get through.
	reg := connect(t, b.URL(), "s1/r1")
	for _, topic := range []string{
		"posguard/v1/policy/all",       // a register must never push policy
		"posguard/v1/reg/s2/r1/events", // nor speak for another store
		"posguard/v1/reg/s1/r2/events", // nor another register
		"posguard/v1/reg/s1/r1/events", // its own: allowed, and sent last
	} {
		reg.Publish(topic, 0, false, "x").WaitTimeout(5 * time.Second)
	}
	select {
	case m := <-got:
		if m != "posguard/v1/reg/s1/r1/events x" {
			t.Fatalf("HQ received %q; only the register's own events may pass", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("HQ never received the register's own event")
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected message reached HQ: %q", m)
	case <-time.After(200 * time.Millisecond):
	}

	// A register may not subscribe to another register's commands.
	stok := reg.Subscribe("posguard/v1/reg/s1/r2/cmd", 1, func(paho.Client, paho.Message) {})
	stok.WaitTimeout(5 * time.Second)
	if codes := stok.(*paho.SubscribeToken).Result(); codes["posguard/v1/reg/s1/r2/cmd"] != 0x80 {
		t.Fatalf("subscribe to another register's cmd: return code %#x, want 0x80 (refused)", codes["posguard/v1/reg/s1/r2/cmd"])
	}
}

func TestStartRefusesPlainTCPBeyondLoopback(t *testing.T) {
	if _, err := Start(Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("Start on 0.0.0.0 without TLS succeeded")
	}
}

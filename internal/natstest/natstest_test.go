package natstest

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestClusterKeepsRetainedAcrossNodeLoss(t *testing.T) {
	c := Start(t, 3)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(c.Nodes[0].MQTTURL()).SetClientID("pub").
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := pub.Publish("posguard/v1/policy/all", 1, true, []byte("v1")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)
	killed := time.Now()
	c.Kill(0)
	c.WaitJetStream()

	// A late register may arrive while the retained-message stream is still
	// electing a leader after the loss (a Raft election, seconds under load):
	// like a real register it reconnects and subscribes again, and the
	// message acked before the loss must still reach it. What fails this test
	// is the message being gone, not the election taking a while.
	deadline := killed.Add(60 * time.Second)
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		p, err := ReadRetained(c.Nodes[2].MQTTURL(), fmt.Sprintf("sub-%d", attempt), "posguard/v1/policy/+", 10*time.Second)
		if err != nil {
			t.Logf("attempt %d, %s after the loss: %v", attempt, time.Since(killed).Round(time.Millisecond), err)
			continue
		}
		if string(p) != "v1" {
			t.Fatalf("retained = %q, want v1", p)
		}
		t.Logf("retained policy read %s after the loss (attempt %d)", time.Since(killed).Round(time.Millisecond), attempt)
		return
	}
	t.Fatal("retained policy lost with node 1: not delivered within 60s of the loss")
}

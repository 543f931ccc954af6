package natstest

import (
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
	c.Kill(0)
	got := make(chan string, 1)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(c.Nodes[2].MQTTURL()).SetClientID("sub").
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	sub.Subscribe("posguard/v1/policy/+", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	select {
	case p := <-got:
		if p != "v1" {
			t.Fatalf("retained = %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retained policy lost with node 1")
	}
}

package mqttconn

import (
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

type msg string

func (m msg) Duplicate() bool   { return false }
func (m msg) Qos() byte         { return 1 }
func (m msg) Retained() bool    { return false }
func (m msg) Topic() string     { return string(m) }
func (m msg) MessageID() uint16 { return 0 }
func (m msg) Payload() []byte   { return nil }
func (m msg) Ack()              {}

func TestQueue(t *testing.T) {
	q := NewQueue(3)
	for _, m := range []msg{"a", "b", "c", "d"} {
		q.Push(m) // never blocks, even past the limit
	}
	if q.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", q.Dropped())
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("no ready signal after Push")
	}
	topics := func(ms []paho.Message) (s string) {
		for _, m := range ms {
			s += m.Topic()
		}
		return s
	}
	if got := topics(q.Take(2)); got != "ab" {
		t.Fatalf("first take %q, want ab", got)
	}
	// Messages left behind signal again, so a worker taking in batches
	// does not stall.
	select {
	case <-q.Ready():
	default:
		t.Fatal("no ready signal with messages left")
	}
	if got := topics(q.Take(10)); got != "c" {
		t.Fatalf("second take %q, want c", got)
	}
	if got := q.Take(10); len(got) != 0 {
		t.Fatalf("empty queue gave %d messages", len(got))
	}
}

package mqttconn

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's memory store keeping its own copy of each outgoing
// publish. On a persistent session paho v1.5.1's resume (client.go) sets
// the DUP flag on the stored packet while that same packet may still be on
// its way out through the normal path (net.go's outgoing goroutine reads
// it), which the race detector reports. Publish stores the packet in the
// publishing goroutine before handing it over, so a copy made there keeps
// the two apart; the payload is shared, and neither side writes it.
type copyingStore struct{ *paho.MemoryStore }

func newStore() copyingStore { return copyingStore{paho.NewMemoryStore()} }

func (s copyingStore) Put(key string, m packets.ControlPacket) {
	if p, ok := m.(*packets.PublishPacket); ok {
		c := *p
		m = &c
	}
	s.MemoryStore.Put(key, m)
}

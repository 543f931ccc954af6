// Package mochiclose shuts an embedded mochi-mqtt broker down without the
// deadlock of its own Close.
//
// mochi-mqtt v2.7.9's Server.Close disconnects each listener's clients
// through Clients.GetByListener, which takes the clients' read lock twice
// (through Len). A client connecting or leaving at that moment asks for the
// write lock between the two, and the broker hangs for good: mochi-mqtt
// issue #488, fixes in open pull requests #489 and #507, no release yet. It
// hung a CI run of the display tests for ten minutes. Close here takes the
// same steps without that call; drop it once a fixed release is out.
package mochiclose

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Close stops accepting on the listeners, disconnects their clients and
// then closes the server. The listeners must be the server's.
func Close(srv *mqtt.Server, ls ...*listeners.TCP) error {
	ids := map[string]bool{}
	for _, l := range ls {
		ids[l.ID()] = true
		// A no-op client closer: the listener marks itself ended and
		// closes its socket, so the server's Close will not call
		// GetByListener for it, and no new client can attach.
		l.Close(func(string) {})
	}
	// GetAll reads the clients under a single read lock.
	for _, cl := range srv.Clients.GetAll() {
		if ids[cl.Net.Listener] && !cl.Closed() {
			_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
	return srv.Close()
}

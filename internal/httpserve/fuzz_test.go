package httpserve

import (
	"net"
	"testing"
)

// FuzzHostAllowed: no Host header panics the check, and on a loopback
// listener only localhost and loopback addresses (or no host) get through,
// whatever brackets, ports, case or dots they come with.
func FuzzHostAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8088", "localhost", "[::1]:80", "evil.example:8088", "LOCALHOST.", "[", ":", "127.0.0.1.evil.example"} {
		f.Add(s)
	}
	h := Hosts{Listen: "127.0.0.1:8088"}
	f.Fuzz(func(t *testing.T, host string) {
		if !h.Allowed(host) {
			return
		}
		c := canonical(host)
		if ip := net.ParseIP(c); c != "" && c != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("Host %q (%q) allowed on a loopback listener", host, c)
		}
	})
}

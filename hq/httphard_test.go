package hq

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/httpserve/httpservetest"
	"github.com/posguard/posguard/internal/mqttconn"
)

// serveAPI serves svc's API the way the hq command does: through
// httpserve.Server, on 127.0.0.1:0.
func serveAPI(t *testing.T, svc *Service, l httpserve.Limits) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config, ts.Listener = httpserve.Server(ts.Listener, svc.Handler(), l, nil)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// offline is an HQ service that never reaches its broker: enough for the
// HTTP checks, which come before any publishing.
func offline(t *testing.T, hosts ...string) *Service {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := New(Config{MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1", Username: "hq"}, Store: st,
		APIListen: "127.0.0.1:8080", APIHosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func denylistSeq(t *testing.T, base string) float64 {
	t.Helper()
	res, err := http.Get(base + "/v1/denylist/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st["seq"].(float64)
}

// A web page cannot change the denylist with a simple POST (text/plain,
// form) or from its own origin, nor read the events by rebinding its
// name to HQ's address.
func TestAPIRefusesWebPages(t *testing.T) {
	ts := serveAPI(t, offline(t, "hq.chain.example"), APILimits())
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	body := `{"add":["acct-stolen-1"]}`
	tests := []struct {
		name, method, path string
		hdr                http.Header
		want               int
		msg                string
	}{
		{"text/plain denylist", "POST", "/v1/denylist", http.Header{"Content-Type": {"text/plain"}}, 415, "send application/json"},
		{"form denylist", "POST", "/v1/denylist", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 415, "send application/json"},
		{"foreign origin denylist", "POST", "/v1/denylist", http.Header{"Origin": {"http://evil.example"}, "Content-Type": {"application/json"}}, 403, "cross-origin"},
		{"rebound host events", "GET", "/v1/events", http.Header{"Host": {"evil.example:" + port}}, 421, "--allow-host"},
		{"rebound host fleet", "GET", "/v1/fleet", http.Header{"Host": {"evil.example"}}, 421, "not a name of this server"},
		{"configured name", "GET", "/v1/events", http.Header{"Host": {"hq.chain.example:" + port}}, 200, "[]"},
		{"localhost", "GET", "/v1/events", http.Header{"Host": {"localhost:" + port}}, 200, "[]"},
	}
	for _, tc := range tests {
		if code, b := httpservetest.Do(t, tc.method, ts.URL+tc.path, body, tc.hdr); code != tc.want || !strings.Contains(b, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, b, tc.want, tc.msg)
		}
	}
	if seq := denylistSeq(t, ts.URL); seq != 0 {
		t.Fatalf("refused requests changed the denylist: seq %v", seq)
	}
	svc := offline(t)
	if _, err := New(Config{MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1", Username: "hq"}, Store: svc.cfg.Store,
		APIHosts: []string{"hq.chain.example:8080"}}); err == nil || !strings.Contains(err.Error(), "API host") {
		t.Fatalf("New with a host name carrying a port: %v", err)
	}
}

// Slow clients are cut off and capped on HQ's API too.
func TestSlowClientsCannotHoldTheAPI(t *testing.T) {
	l := APILimits()
	l.Read, l.ReadHeader, l.MaxConns = 300*time.Millisecond, 300*time.Millisecond, 8
	ts := serveAPI(t, offline(t), l)
	httpservetest.SlowBodies(t, ts.Listener.Addr().String(), "/v1/denylist", `{"add":["acct-slow"]}`, 50, 30*time.Second)
	if seq := denylistSeq(t, ts.URL); seq != 0 {
		t.Fatalf("slow clients changed the denylist: seq %v", seq)
	}
}

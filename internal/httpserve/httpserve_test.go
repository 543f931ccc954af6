package httpserve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/httpserve/httpservetest"
)

// serve runs h behind Server on 127.0.0.1:0 until the test ends and returns
// its address; wrap, if given, wraps the listener under Server's.
func serve(t *testing.T, h http.Handler, l Limits, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := ln
	if wrap != nil {
		inner = wrap(ln)
	}
	srv, lim := Server(inner, h, l, nil)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lim) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// counting counts the connections open at once, and their peak. It sits
// under the cap: a connection counts until it is really closed, before the
// cap hands its slot to the next.
type counting struct {
	net.Listener
	open, peak atomic.Int64
}

func (c *counting) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return &countedConn{Conn: conn, l: c}, nil
}

type countedConn struct {
	net.Conn
	l    *counting
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// A client that trickles its body is cut off after Limits.Read, and no
// more than MaxConns connections are ever served at once: 50 slow clients
// neither pile up nor keep the server from answering afterwards.
func TestSlowBodiesAreCutOffAndCapped(t *testing.T) {
	var cutOff atomic.Int64
	cnt := &counting{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				cutOff.Add(1)
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	addr := serve(t, h, Limits{Read: 200 * time.Millisecond, ReadHeader: 200 * time.Millisecond, MaxConns: 8}, func(ln net.Listener) net.Listener {
		cnt.Listener = ln
		return cnt
	})
	const clients = 50
	httpservetest.SlowBodies(t, addr, "/v1/decide", `{"lines":[]}`, clients, 30*time.Second)
	if p := cnt.peak.Load(); p > 8 {
		t.Errorf("%d connections served at once, cap 8", p)
	}
	if cutOff.Load() != clients {
		t.Errorf("%d of %d slow bodies ended by the read deadline", cutOff.Load(), clients)
	}
	// The server still answers a well-behaved client.
	res, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("after the flood: %s", res.Status)
	}
}

// A client that sends its headers slowly is cut off by ReadHeader.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := serve(t, http.NotFoundHandler(), Limits{ReadHeader: 100 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// Every body is capped, whatever the handler reads, and so are headers.
func TestBodyAndHeaderCaps(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprint(w, len(b))
	})
	addr := serve(t, h, Limits{MaxBodyBytes: 1024, MaxHeaderBytes: 2048}, nil)
	for _, tc := range []struct {
		size int
		want int
	}{{1024, 200}, {1025, 413}, {1 << 20, 413}} {
		res, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(strings.Repeat("x", tc.size)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("body of %d bytes: %d, want %d", tc.size, res.StatusCode, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("y", 8<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB header: %d, want 431", res.StatusCode)
	}
}

// A stream that extends its deadlines outlives Read and Write; one that
// does not is cut off at Write.
func TestExtendKeepsStreamsAlive(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 6 {
			if r.URL.Query().Get("extend") != "" {
				Extend(w, time.Second)
			}
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	addr := serve(t, h, Limits{Read: 150 * time.Millisecond, Write: 250 * time.Millisecond}, nil)
	lines := func(q string) int {
		res, err := http.Get("http://" + addr + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		n := 0
		for sc := bufio.NewScanner(res.Body); sc.Scan(); {
			n++
		}
		return n
	}
	if n := lines("extend=1"); n != 6 {
		t.Errorf("extended stream: %d lines, want 6", n)
	}
	if n := lines(""); n >= 6 {
		t.Errorf("unextended stream: %d lines, want it cut off", n)
	}
}

func TestHostsAllowed(t *testing.T) {
	loop := Hosts{Listen: "127.0.0.1:8088", Names: []string{"Register-1.store.example"}}
	any := Hosts{Listen: "0.0.0.0:8088"}
	lan := Hosts{Listen: "192.168.1.20:8088"}
	tests := []struct {
		h    Hosts
		host string
		want bool
	}{
		{loop, "127.0.0.1:8088", true},
		{loop, "localhost:8088", true},
		{loop, "LOCALHOST.", true},
		{loop, "[::1]:8088", true},
		{loop, "127.0.0.2", true},
		{loop, "register-1.store.example:8088", true},
		{loop, "evil.example:8088", false},
		{loop, "localhost.evil.example", false},
		{loop, "192.168.1.20:8088", false},
		{any, "192.168.1.20:8088", true},
		{any, "[fe80::1]:8088", true},
		{any, "evil.example", false},
		{lan, "192.168.1.20", true},
		{lan, "192.168.1.21", false},
		{Hosts{Listen: "register-1:8088"}, "register-1:8088", true},
		{Hosts{}, "127.0.0.1:1", true},
		{Hosts{}, "10.0.0.1", true},
		{Hosts{}, "evil.example", false},
	}
	for _, tc := range tests {
		if got := tc.h.Allowed(tc.host); got != tc.want {
			t.Errorf("%+v.Allowed(%q) = %v, want %v", tc.h, tc.host, got, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"register-1.store.example": true, "10.0.0.5": true, "::1": true, "[::1]": true,
		"": false, "host:8088": false, "http://host": false, "a b": false, strings.Repeat("a", 254): false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// Through a real server: a rebinding Host gets 421, a foreign Origin 403,
// a text/plain body 415; the server's own origin and JSON pass.
func TestGuardAndJSONOnly(t *testing.T) {
	var reached atomic.Int64
	h := Guard(JSONOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })),
		Hosts{Listen: "127.0.0.1:0", Setting: "http.allowedHosts"})
	addr := serve(t, h, Limits{}, nil)
	port := strings.Split(addr, ":")[1]
	json := func(h http.Header) http.Header {
		h.Set("Content-Type", "application/json")
		return h
	}
	tests := []struct {
		name string
		hdr  http.Header
		want int
		msg  string
	}{
		{"same origin json", http.Header{"Origin": {"http://" + addr}, "Content-Type": {"application/json; charset=utf-8"}}, 200, ""},
		{"no origin json", json(http.Header{}), 200, ""},
		{"text/plain", http.Header{"Content-Type": {"text/plain"}}, 415, "send application/json"},
		{"form", http.Header{"Origin": {"http://" + addr}, "Content-Type": {"application/x-www-form-urlencoded"}}, 415, "send application/json"},
		{"no content type", http.Header{}, 415, "send application/json"},
		{"foreign origin", json(http.Header{"Origin": {"http://evil.example"}}), 403, "cross-origin"},
		{"null origin", json(http.Header{"Origin": {"null"}}), 403, "cross-origin"},
		{"other port on localhost", json(http.Header{"Origin": {"http://localhost:3000"}}), 403, "cross-origin"},
		{"rebinding host", json(http.Header{"Host": {"evil.example:" + port}}), 421, "http.allowedHosts"},
	}
	for _, tc := range tests {
		before := reached.Load()
		code, b := httpservetest.Do(t, "POST", "http://"+addr+"/v1/decide", "{}", tc.hdr)
		if code != tc.want || !strings.Contains(b, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, b, tc.want, tc.msg)
		}
		if got := reached.Load() > before; got != (tc.want == 200) {
			t.Errorf("%s: handler reached %v", tc.name, got)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:0": true, "[::1]:1883": true, "localhost:80": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false, "example.com:80": false,
	} {
		got, err := IsLoopback(addr)
		if err != nil || got != want {
			t.Errorf("IsLoopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := IsLoopback("8080"); err == nil {
		t.Error("an address without a port accepted")
	}
}

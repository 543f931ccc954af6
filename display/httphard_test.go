package display

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/httpserve/httpservetest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// loginRig is a password-protected display and a page logged in to it.
func loginRig(t *testing.T, mod func(*Config)) (*rig, *page) {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte("store-pass"), bcrypt.MinCost)
	r := startRig(t, func(c *Config) {
		c.PasswordHash = string(hash)
		if mod != nil {
			mod(c)
		}
	})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.PostForm(r.base+"/login", url.Values{"password": {"store-pass"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 { // followed the redirect to the page
		t.Fatalf("login: %d", res.StatusCode)
	}
	p := &page{t: t, c: c, base: r.base}
	return r, p
}

// 1,100 cookie-less GETs in a burst no longer log the manager out: they
// store no sessions, so none is evicted.
func TestCookielessFloodKeepsLogin(t *testing.T) {
	r, mgr := loginRig(t, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for i := w; i < 1100; i += 8 {
				res, err := c.Get(r.base + "/")
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if len(res.Cookies()) != 0 {
					t.Errorf("cookie-less GET got a cookie: %v", res.Cookies())
					return
				}
			}
		}()
	}
	wg.Wait()
	p := r.openWith(mgr.c)
	if code, out := p.resolve(ResolveRequest{Register: "R1", ReviewID: "x", Action: "approve", PIN: "1234"}, p.csrf); code != http.StatusConflict {
		t.Fatalf("the manager's resolve after the flood: %d %s, want 409 (logged in, no such review)", code, out.Error)
	}
}

// Slow clients are cut off and capped on the display too, and the page
// still loads afterwards.
func TestDisplaySlowClients(t *testing.T) {
	r := startRig(t, func(c *Config) {
		c.HTTPLimits = httpserve.Limits{Read: 300 * time.Millisecond, ReadHeader: 300 * time.Millisecond, MaxConns: 8}
	})
	httpservetest.SlowBodies(t, strings.TrimPrefix(r.base, "http://"), "/api/resolve", `{"register":"R1"}`, 50, 30*time.Second)
	r.open()
}

// The page's event stream is a long response: it outlives the server's
// read and write timeouts and still delivers alerts.
func TestStreamOutlivesTimeouts(t *testing.T) {
	r := startRig(t, func(c *Config) {
		c.HTTPLimits = httpserve.Limits{Read: 200 * time.Millisecond, ReadHeader: 200 * time.Millisecond, Write: 300 * time.Millisecond}
	})
	s := r.open().stream()
	s.next(t, "snapshot")
	time.Sleep(time.Second)
	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 7, policy.Deny, time.Now()), false)
	s.next(t, "alert")
}

// A resolve with the right CSRF token but a text/plain body is still
// refused: the body must be declared JSON.
func TestResolveNeedsJSON(t *testing.T) {
	r := startRig(t, nil)
	p := r.open()
	req, _ := http.NewRequest("POST", r.base+"/api/resolve", strings.NewReader(`{"register":"R1","reviewId":"x","action":"approve","pin":"1234"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(CSRFHeader, p.csrf)
	res, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain resolve with CSRF: %d, want 415", res.StatusCode)
	}
}

// Beyond loopback the display answers to IP literals, localhost and its
// configured names only: a rebinding name is refused before the login.
func TestHostCheckBeyondLoopback(t *testing.T) {
	r, _ := loginRig(t, func(c *Config) { c.Listen = "0.0.0.0:8090"; c.Hosts = []string{"display.store.example"} })
	for host, want := range map[string]int{
		"evil.example:8090": http.StatusMisdirectedRequest, "192.168.1.20:8090": http.StatusSeeOther,
		"display.store.example:8090": http.StatusSeeOther, "localhost:8090": http.StatusSeeOther,
	} {
		if code, b := httpservetest.Do(t, "GET", r.base+"/", "", http.Header{"Host": {host}}); code != want {
			t.Errorf("Host %s: %d %s, want %d", host, code, b, want)
		}
	}
	if _, err := New(Config{Store: testStore, MQTT: mqttconn.Config{Broker: "tcp://127.0.0.1:1"}, Hosts: []string{"http://display"}}); err == nil {
		t.Error("New accepted an allowed host with a scheme")
	}
}

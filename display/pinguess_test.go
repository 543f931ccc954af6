package display

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// handlerFrom serves requests straight from the display's handler as if
// they came from remote: the devices of a store LAN, which a test cannot
// open real connections from.
type handlerFrom struct {
	h      http.Handler
	remote string
}

func (t handlerFrom) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.RemoteAddr = t.remote
	req.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// An attacker's wrong PINs at the display must not lock out the manager:
// each device has its own few guesses, fewer than the register's, and a
// device out of guesses is refused at the display (its PINs never reach
// the register) while the review shows the PIN guessing alert.
func TestPINGuessesLimitedPerDevice(t *testing.T) {
	r := startRig(t, func(c *Config) { c.ResolveLimit = 100 })
	cmds := registerClient(t, r.broker.URL(), testStore, "R1")
	now := time.Now().UTC().Truncate(time.Second)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Review, now), false)
	r.waitPending("R1", "sale-R1-1")
	attacker := r.openAs(handlerFrom{r.srv.Handler(), "192.168.1.66:50000"})
	manager := r.openAs(handlerFrom{r.srv.Handler(), "192.168.1.10:50000"})
	guess := ResolveRequest{Register: "R1", ReviewID: "sale-R1-1", Action: "approve", PIN: "0000"}

	seq := uint64(2)
	for i := range pinGuessesPerSource {
		if code, out := attacker.resolve(guess, attacker.csrf); code != http.StatusAccepted {
			t.Fatalf("guess %d: %d %+v", i, code, out)
		}
		if _, err := recvCmd(cmds, 10*time.Second); err != nil {
			t.Fatalf("guess %d did not reach the register", i)
		}
		r.publish(wire.AlertsTopic(testStore, "R1"), refusalEvent(testStore, "R1", seq, "sale-R1-1", event.CodeWrongPIN, event.RefusedBadPIN, now), false)
		seq++
		r.waitDetail("R1", "sale-R1-1", board.BadPIN)
	}
	code, out := attacker.resolve(guess, attacker.csrf)
	if code != http.StatusTooManyRequests || !strings.Contains(out.Error, "too many wrong PINs from this device") {
		t.Fatalf("guess past the limit: %d %+v", code, out)
	}
	if m, err := recvCmd(cmds, 300*time.Millisecond); err == nil {
		t.Fatalf("a refused guess reached the register: %s", m.Payload())
	}
	r.waitDetail("R1", "sale-R1-1", board.PINGuessing)

	// The manager's device still gets through to the register.
	right := guess
	right.PIN = "4711"
	if code, out := manager.resolve(right, manager.csrf); code != http.StatusAccepted {
		t.Fatalf("manager after the attacker ran out: %d %+v", code, out)
	}
	m, err := recvCmd(cmds, 10*time.Second)
	if err != nil {
		t.Fatal("the manager's resolution did not reach the register")
	}
	var c wire.Command
	if err := json.Unmarshal(m.Payload(), &c); err != nil || c.PIN.Reveal() != "4711" {
		t.Fatalf("command %s: %v", m.Payload(), err)
	}
}

// Every 127.x address is one device: an attacker on the display's machine
// does not get more guesses by changing source address. A right PIN (the
// register resolves the review) gives its guess back.
func TestPINGuessesLoopbackIsOneDevice(t *testing.T) {
	r := startRig(t, func(c *Config) { c.ResolveLimit = 100 })
	cmds := registerClient(t, r.broker.URL(), testStore, "R1")
	now := time.Now().UTC().Truncate(time.Second)
	for seq := uint64(1); seq <= 2; seq++ {
		r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", seq, policy.Review, now), false)
	}
	r.waitPending("R1", "sale-R1-2")
	var n atomic.Int32
	rotating := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n.Add(1)))}
		return (&net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}}
	p := r.openAs(rotating)
	seq := uint64(3)
	send := func(review, pin string) int {
		t.Helper()
		code, _ := p.resolve(ResolveRequest{Register: "R1", ReviewID: review, Action: "approve", PIN: pin}, p.csrf)
		if code == http.StatusAccepted {
			if _, err := recvCmd(cmds, 10*time.Second); err != nil {
				t.Fatal("resolution did not reach the register")
			}
		}
		return code
	}
	// A right PIN on review 1: the register resolves it, the guess is
	// given back.
	if code := send("sale-R1-1", "4711"); code != http.StatusAccepted {
		t.Fatalf("right PIN: %d", code)
	}
	r.publish(wire.AlertsTopic(testStore, "R1"), resolutionEvent(testStore, "R1", seq, "sale-R1-1", "approve", now), false)
	seq++
	r.waitState("R1", "sale-R1-1", board.Approved)
	for i := range pinGuessesPerSource {
		if code := send("sale-R1-2", fmt.Sprintf("%04d", i)); code != http.StatusAccepted {
			t.Fatalf("wrong PIN %d from 127.0.0.%d: %d", i, 2+n.Load(), code)
		}
		r.publish(wire.AlertsTopic(testStore, "R1"), refusalEvent(testStore, "R1", seq, "sale-R1-2", event.CodeWrongPIN, event.RefusedBadPIN, now), false)
		seq++
		r.waitDetail("R1", "sale-R1-2", board.BadPIN)
	}
	if code := send("sale-R1-2", "9999"); code != http.StatusTooManyRequests {
		t.Fatalf("a fresh 127.x address after %d wrong PINs: %d, want 429", pinGuessesPerSource, code)
	}
	if n.Load() < pinGuessesPerSource+2 {
		t.Fatalf("only %d source addresses used", n.Load())
	}
}

// The register's own PIN guessing alert shows on the review too.
func TestRegisterPINGuessingAlert(t *testing.T) {
	r := startRig(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Review, now), false)
	r.waitPending("R1", "sale-R1-1")
	r.publish(wire.AlertsTopic(testStore, "R1"), refusalEvent(testStore, "R1", 2, "sale-R1-1", event.CodePINGuessing,
		"10 wrong PINs at this register within 15m0s, the last from http:127.0.0.9; "+event.RefusedPINGuessing, now), false)
	r.waitDetail("R1", "sale-R1-1", board.PINGuessing)
}

func TestClientKey(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:5000":       "loopback",
		"127.9.8.7:5000":       "loopback",
		"[::1]:5000":           "loopback",
		"192.168.1.10:5000":    "192.168.1.10",
		"[2001:db8::1]:5000":   "2001:db8::/64",
		"[2001:db8::ff]:6000":  "2001:db8::/64",
		"[2001:db8:0:1::1]:60": "2001:db8:0:1::/64",
		"not-an-address":       "not-an-address",
	} {
		if got := clientKey(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", remote, got, want)
		}
	}
}

// waitDetail waits until the review's alert shows detail.
func (r *rig) waitDetail(register, reviewID, detail string) {
	r.t.Helper()
	r.waitAlert(register, reviewID, func(a board.Alert) bool { return a.Detail == detail }, "detail "+detail)
}

func (r *rig) waitState(register, reviewID, state string) {
	r.t.Helper()
	r.waitAlert(register, reviewID, func(a board.Alert) bool { return a.State == state }, "state "+state)
}

func (r *rig) waitAlert(register, reviewID string, ok func(board.Alert) bool, what string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, a := range r.srv.board.Snapshot().Alerts {
			if a.Register == register && a.ReviewID == reviewID && ok(a) {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("review %s of %s never got %s", reviewID, register, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

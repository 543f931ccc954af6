package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// resolveFrom posts a resolution from source address ip (any 127.x works
// on Linux), as an attacker with many loopback addresses would.
func (r *running) resolveFrom(t testing.TB, ip, id, pin string) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	// Generous: under -race on a loaded machine, five concurrent bcrypt
	// comparisons at cost 10 take many seconds.
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	b, _ := json.Marshal(agent.ResolveRequest{Action: "approve", PIN: pin, By: "till"})
	res, err := c.Post(r.url+"/v1/reviews/"+id, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Errorf("resolve from %s: %v", ip, err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// A 4-digit PIN must not fall to concurrent or spread-out guesses: PIN
// attempts are checked and counted in one step, per review and per
// register whatever the source address or path (HTTP, the display's MQTT
// commands), and using up a limit raises a PIN guessing alert on the
// alerts topic, which displays and HQ follow.
func TestPINGuessing(t *testing.T) {
	b, auth := embedtest.Start(t, "display/S001", "S001/R1")
	f := newFixture(t)
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	r := start(t, f.config(fmt.Sprintf("hq:\n  broker: %s\n  passwordFile: %s\n  maxReconnect: 500ms\nreview: {timeout: 2h}\n", b.URL(), auth.PasswordFile("S001/R1"))), agent.Options{Now: clock})
	held := func(acct string) string {
		t.Helper()
		res, _ := r.decide(t, f.mint(acct, nil), line(carton, 2))
		if res.Outcome != policy.Review {
			t.Fatalf("not held: %+v", res)
		}
		return res.ReviewID
	}
	revA, revB, revC := held("guess-a"), held("guess-b"), held("guess-c")

	disp := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(wire.DisplayUsername("S001")).
		SetUsername(wire.DisplayUsername("S001")).SetPassword(auth.Password(wire.DisplayUsername("S001"))))
	if tok := disp.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("display connect: %v", tok.Error())
	}
	defer disp.Disconnect(100)
	alerts := make(chan event.Event, 256)
	if tok := disp.Subscribe(wire.AlertsTopic("S001", "R1"), 1, func(_ paho.Client, m paho.Message) {
		if ev, err := event.Parse(m.Payload()); err == nil && ev.Type == event.Refusal {
			alerts <- ev
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	refusal := func(review, suffix string) event.Event {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case ev := <-alerts:
				if ev.Resolution != nil && ev.Resolution.ReviewID == review && strings.HasSuffix(ev.Detail, suffix) {
					return ev
				}
			case <-deadline:
				t.Fatalf("no refusal of review %s ending %q on the alerts topic", review, suffix)
			}
		}
	}
	seq := 0
	command := func(review, pin string) {
		t.Helper()
		seq++
		cmd := wire.Command{ID: fmt.Sprintf("cmd-%d", seq), Type: wire.CmdResolve, Store: "S001", Register: "R1", ReviewID: review,
			Action: wire.Approve, PIN: wire.PIN(pin), By: "display/S001", At: time.Now().UTC()}
		payload, err := cmd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if tok := disp.Publish(wire.CmdTopic("S001", "R1"), 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}

	// 40 concurrent wrong PINs for one review, each from its own 127.x
	// address: 5 are compared, the rest refused unevaluated.
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := r.resolveFrom(t, fmt.Sprintf("127.0.%d.%d", 1+i/200, 2+i%200), revA, fmt.Sprintf("%04d", 1000+i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusForbidden] != 5 || codes[http.StatusTooManyRequests] != 35 {
		t.Fatalf("40 concurrent wrong PINs: %v; want 5 compared (403) and 35 refused (429)", codes)
	}
	ev := refusal(revA, event.RefusedPINGuessing)
	if ev.Code != event.CodePINGuessing || !strings.Contains(ev.Detail, "5 wrong PINs for this review, the last from http:127.0.") || ev.Resolution.Action != event.Approve || ev.Resolution.By != "till" {
		t.Fatalf("PIN guessing alert %q %+v", ev.Detail, ev.Resolution)
	}
	// The review is closed to PINs, even the right one from a new address.
	if code := r.resolveFrom(t, "127.0.9.9", revA, testPIN); code != http.StatusTooManyRequests {
		t.Fatalf("right PIN on a guessed-at review: %d, want 429", code)
	}

	// The register counts every source together: 4 wrong PINs in display
	// commands over MQTT and 1 over HTTP fill its 10.
	for _, pin := range []string{"1111", "2222", "3333", "4444"} {
		command(revB, pin)
		if ev := refusal(revB, event.RefusedBadPIN); ev.Code != event.CodeWrongPIN {
			t.Fatalf("wrong PIN refusal with code %q", ev.Code)
		}
	}
	if code := r.resolveFrom(t, "127.0.7.7", revC, "5555"); code != http.StatusForbidden {
		t.Fatalf("10th wrong PIN: %d, want 403", code)
	}
	ev = refusal(revC, event.RefusedPINGuessing)
	if ev.Code != event.CodePINGuessing || !strings.Contains(ev.Detail, "10 wrong PINs at this register within 15m0s, the last from http:127.0.7.7") {
		t.Fatalf("PIN guessing alert %q", ev.Detail)
	}
	if code := r.resolveFrom(t, "127.0.8.8", revC, testPIN); code != http.StatusTooManyRequests {
		t.Fatalf("right PIN at a register out of attempts: %d, want 429", code)
	}
	command(revC, testPIN)
	if ev := refusal(revC, event.RefusedRateLimited); ev.Code != event.CodeRateLimited {
		t.Fatalf("rate limited refusal with code %q", ev.Code)
	}

	// Once the window has passed, the manager's PIN works again and the
	// resolution says whose PIN it was.
	skew.Store(int64(16 * time.Minute))
	if code, body := r.resolve(t, revC, "approve", testPIN); code != http.StatusOK {
		t.Fatalf("right PIN after the window: %d %s", code, body)
	}
	var one agent.ReviewInfo
	if r.do(t, "GET", "/v1/reviews/"+revB, nil, &one); one.Resolution != nil {
		t.Fatalf("review B resolved by guesses: %+v", one.Resolution)
	}
}

// The right PIN gives its attempt back: a manager who mistypes now and
// then is not locked out by their own successes. 9 wrong and 3 right PINs
// make 12 attempts, more than the register's 10, and all are compared.
func TestRightPINsDoNotCount(t *testing.T) {
	f := newFixture(t)
	r := start(t, f.config(""), agent.Options{})
	for i, wrong := range []int{4, 4, 1} {
		res, _ := r.decide(t, f.mint(fmt.Sprintf("ok-%d", i), nil), line(carton, 2))
		if res.Outcome != policy.Review {
			t.Fatalf("sale %d not held: %+v", i, res)
		}
		for j := range wrong {
			if code, body := r.resolve(t, res.ReviewID, "reject", "0000"); code != http.StatusForbidden {
				t.Fatalf("review %d, wrong PIN %d: %d %s", i, j, code, body)
			}
		}
		if code, body := r.resolve(t, res.ReviewID, "reject", testPIN); code != http.StatusOK {
			t.Fatalf("review %d, right PIN: %d %s", i, code, body)
		}
	}
}

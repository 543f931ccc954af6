package hq

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/display/sse"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// signedPolicy is the example policy as version v, signed.
func signedPolicy(t *testing.T, priv ed25519.PrivateKey, v int64) []byte {
	t.Helper()
	p, err := policy.Load(policy.Example())
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Version = v
	p.Metadata.IssuedAt = time.Now().Add(-time.Hour).Truncate(time.Second)
	p.Metadata.ExpiresAt = time.Now().Add(24 * time.Hour).Truncate(time.Second)
	b, err := bundle.SignPolicy(priv, bundle.AlgEdDSA, "policy1", p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openStream reads GET url as server-sent events in the background.
func openStream(t *testing.T, url string) <-chan sse.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("GET %s: %s %s", url, res.Status, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	msgs := make(chan sse.Message, 100)
	go func() {
		defer close(msgs)
		rd := sse.NewReader(res.Body)
		for {
			m, err := rd.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	return msgs
}

// nextEvent returns the next message named name, skipping others.
func nextEvent(t *testing.T, msgs <-chan sse.Message, name string, v any) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("stream closed waiting for %q", name)
			}
			if m.Event == name {
				if err := json.Unmarshal(m.Data, v); err != nil {
					t.Fatalf("%s event %s: %v", name, m.Data, err)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no %q event within 10s", name)
		}
	}
}

// TestPolicyRollout: HQ learns the pushed version from the retained policy
// topic and counts where the registers stand with it, live: two apply it,
// one refuses it and says why, and the stream tells each change.
func TestPolicyRollout(t *testing.T) {
	f := start(t)
	_, signer, _ := ed25519.GenerateKey(nil)
	stream := openStream(t, f.http.URL+"/v1/fleet/stream")
	var pushedNow []pushedPolicy
	nextEvent(t, stream, "policies", &pushedNow)
	if len(pushedNow) != 0 {
		t.Fatalf("policies before any push: %+v", pushedNow)
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		c, _ := register(t, f.auth, f.b.URL(), "s1", id)
		status := func(v int64, refused *wire.Refusal) {
			st := wire.Status{Store: "s1", Register: id, Online: true, Version: "test", OutboxDepth: 2,
				Policy: &wire.PolicyInfo{Name: "chain-default", Version: v}, Refusal: refused,
				Links: wire.Links{Scanner: wire.LinkUp, POS: wire.LinkUp}, At: time.Now()}
			b, _ := json.Marshal(st)
			c.Publish(wire.StatusTopic("s1", id), 1, true, b) // retained, as agents do
		}
		status(1, nil)
		// r3 refuses every bundle, as a register that does not trust the key.
		tok := c.Subscribe(wire.PolicyTopic(wire.ScopeAll), 1, func(_ paho.Client, m paho.Message) {
			h, err := bundle.PeekPolicy(m.Payload())
			if err != nil {
				return
			}
			if id == "r3" {
				go status(1, &wire.Refusal{Subject: wire.SubjectPolicy, Reason: "unknown_key", Detail: `kid "policy1" is not a trusted key`, Version: h.Version, At: time.Now()})
				return
			}
			go status(h.Version, nil)
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe policy: %v", tok.Error())
		}
	}
	var e fleetEntry
	nextEvent(t, stream, "status", &e)
	if e.Store != "s1" || e.PolicyVersion != 1 || e.Scanner != "up" {
		t.Errorf("first status event: %+v", e)
	}
	waitFor(t, "the store summary", func() bool {
		var p storesPage
		getJSON(t, f.http.URL+"/v1/fleet/stores", &p)
		return len(p.Stores) == 1 && p.Stores[0].Registers == 3
	})
	var ro rolloutView
	getJSON(t, f.http.URL+"/v1/policy/rollout", &ro)
	if ro.Policy != nil || ro.Rollout != nil || len(ro.Pushed) != 0 {
		t.Errorf("rollout before any push: %+v", ro)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := push.Run(ctx, push.Options{MQTT: f.auth.MQTT(f.b.URL(), push.PushUsername), Scope: wire.ScopeAll,
		Bundle: signedPolicy(t, signer, 2), Version: 2, Expect: 2})
	if err != nil || len(rep.Applied) != 2 {
		t.Fatalf("push: %+v, %v", rep, err)
	}
	nextEvent(t, stream, "policies", &pushedNow)
	if len(pushedNow) != 1 || pushedNow[0].Scope != wire.ScopeAll || pushedNow[0].Version != 2 || pushedNow[0].Name == "" {
		t.Errorf("policies event after the push: %+v", pushedNow)
	}
	waitFor(t, "the rollout to settle", func() bool {
		getJSON(t, f.http.URL+"/v1/policy/rollout", &ro)
		return ro.Rollout != nil && ro.Rollout.Applied+ro.Rollout.Refused == 3
	})
	want := store.Rollout{Scope: wire.ScopeAll, Version: 2, Registers: 3, Applied: 2, Refused: 1}
	got := *ro.Rollout
	if ro.Policy == nil || ro.Policy.Version != 2 || got.Registers != want.Registers || got.Applied != 2 || got.Refused != 1 ||
		len(got.Refusals) != 1 || got.Refusals[0].Register != "r3" || got.Refusals[0].Reason != "unknown_key" ||
		!strings.Contains(got.Refusals[0].Detail, "not a trusted key") || len(got.Waiting) != 0 {
		t.Errorf("rollout of v2: policy %+v, rollout %+v", ro.Policy, got)
	}
	// An older version asked for: everyone is past it.
	getJSON(t, f.http.URL+"/v1/policy/rollout?version=1&scope=s1", &ro)
	if ro.Policy != nil || ro.Rollout == nil || ro.Rollout.Scope != "s1" || ro.Rollout.Applied != 1 || ro.Rollout.Refused != 2 {
		t.Errorf("rollout of v1 in s1: %+v %+v", ro.Policy, ro.Rollout)
	}

	// One store's registers, paged, each with its refusal and links.
	var regs []fleetEntry
	getJSON(t, f.http.URL+"/v1/fleet?store=s1&limit=2", &regs)
	if len(regs) != 2 || regs[0].Register != "r1" || regs[1].Register != "r2" || regs[0].PolicyVersion != 2 || regs[0].OutboxDepth != 2 {
		t.Errorf("first page of s1: %+v", regs)
	}
	getJSON(t, f.http.URL+"/v1/fleet?store=s1&after=r2", &regs)
	if len(regs) != 1 || regs[0].Register != "r3" || regs[0].RefusalReason != "unknown_key" || regs[0].RefusalVersion != 2 ||
		regs[0].PolicyVersion != 1 || regs[0].Scanner != "up" || regs[0].POS != "up" {
		t.Errorf("after r2 in s1: %+v", regs)
	}
	getJSON(t, f.http.URL+"/v1/fleet?store=s2", &regs)
	if len(regs) != 0 {
		t.Errorf("s2 has no registers; got %+v", regs)
	}
	// The unfiltered form still lists the whole fleet.
	getJSON(t, f.http.URL+"/v1/fleet", &regs)
	if len(regs) != 3 {
		t.Errorf("the whole fleet: %d registers", len(regs))
	}
}

func TestFleetEndpointsRefuseBadParameters(t *testing.T) {
	f := start(t)
	for _, path := range []string{
		"/v1/fleet?store=bad/store", "/v1/fleet?store=all", "/v1/fleet?store=s1&limit=0",
		"/v1/fleet/stores?limit=-1", "/v1/fleet/stores?limit=100000", "/v1/fleet/stores?limit=x",
		"/v1/policy/rollout?scope=a+b", "/v1/policy/rollout?version=0", "/v1/policy/rollout?version=x",
	} {
		res, err := http.Get(f.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || body.Error == "" {
			t.Errorf("GET %s: %s %q; want 400 with the reason", path, res.Status, body.Error)
		}
	}
}

// overlayStore pages one store's registers with the live statuses laid
// over: a newer live status wins, an older one does not, and a register
// only seen live joins the page where it sorts into it.
func TestOverlayStore(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	reg := func(storeID, r string, v int64, min int) store.Register {
		return store.Register{Store: storeID, Register: r,
			Status: wire.Status{Store: storeID, Register: r, Policy: &wire.PolicyInfo{Name: "p", Version: v}, At: at(min)}}
	}
	l := newLiveFleet(nil)
	for _, r := range []store.Register{reg("s1", "r2", 9, 5), reg("s1", "r3", 9, 0), reg("s1", "r0", 9, 0), reg("s1", "r9", 9, 0), reg("s2", "r1", 9, 0)} {
		l.regs[r.Store+"/"+r.Register] = r
	}
	stored := func() []store.Register {
		return []store.Register{reg("s1", "r1", 1, 1), reg("s1", "r2", 1, 1), reg("s1", "r3", 1, 1), reg("s1", "r4", 1, 1)}
	}
	show := func(regs []store.Register) string {
		var out []string
		for _, r := range regs {
			out = append(out, fmt.Sprintf("%s:v%d", r.Register, r.Status.Policy.Version))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		after string
		limit int
		want  string
	}{
		// r0 is only live and sorts first; r2's live status is newer,
		// r3's older; the full page ends at r4, so r9 waits for the next.
		{"", 4, "r0:v9 r1:v1 r2:v9 r3:v1"},
		{"", 10, "r0:v9 r1:v1 r2:v9 r3:v1 r4:v1 r9:v9"},
		{"r0", 4, "r1:v1 r2:v9 r3:v1 r4:v1"},
	} {
		got := show(l.overlayStore("s1", c.after, c.limit, stored()[:min(c.limit, 4)]))
		if got != c.want {
			t.Errorf("after %q limit %d: %s, want %s", c.after, c.limit, got, c.want)
		}
	}
}

package agent_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

// With the embedded broker and a real HQ: decisions reach HQ and leave
// the outbox, a denylist change reaches the register's decisions, a signed
// policy replaces the bootstrap file, and a display's resolve command on
// the register's cmd topic approves a held sale.
func TestWithHQ(t *testing.T) {
	b, auth := embedtest.Start(t, "hq", "hq-push", "display/S001", "S001/R1")
	hqYAML := "hq:\n  broker: " + b.URL() + "\n  passwordFile: " + auth.PasswordFile("S001/R1") + "\n"
	f := newFixture(t)
	hqStore, err := store.OpenBolt(filepath.Join(t.TempDir(), "hq.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hqStore.Close() })
	svc, err := hq.New(hq.Config{MQTT: hqMQTT(auth, b.URL()),
		Store: hqStore, Signer: f.hqKey, SignerAlg: "EdDSA", SignerKID: "hq1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-svc.Ready()

	r := start(t, f.config(hqYAML+"  maxReconnect: 500ms\n"), agent.Options{})
	waitFor(t, "HQ link", func() bool {
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		return st.HQ.Connected
	})

	res, _ := r.decide(t, f.mint("hq-1", nil), line(onigiri, 1))
	held, _ := r.decide(t, f.mint("hq-2", nil), line(carton, 2))
	if res.Outcome != policy.Allow || held.Outcome != policy.Review {
		t.Fatalf("decisions %s %s", res.Outcome, held.Outcome)
	}
	hqEvents := func(types ...event.Type) []event.Event {
		evs, err := hqStore.Events(context.Background(), store.Query{Types: types, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	waitFor(t, "HQ to store 2 decisions and 1 alert", func() bool {
		return len(hqEvents(event.Decision)) == 2 && len(hqEvents(event.Alert)) == 1
	})
	waitFor(t, "the outbox to empty", func() bool {
		var ob agent.OutboxInfo
		r.do(t, "GET", "/v1/outbox", nil, &ob)
		return ob.Depth == 0
	})

	// A quiet register hears nothing from HQ while all is well: connected
	// with nothing waiting for an ack, it is not offline however long the
	// silence.
	quiet := f.config(hqYAML + "  offlineAfter: 1ms\n")
	r.Reload(quiet)
	time.Sleep(5 * time.Millisecond)
	if res, _ := r.decide(t, f.mint("hq-quiet", nil), line(onigiri, 1)); res.Decision.Offline {
		t.Fatalf("connected register decided offline: %+v", res.Decision)
	}
	r.Reload(f.config(hqYAML + ""))
	waitFor(t, "HQ to store the quiet sale", func() bool { return len(hqEvents(event.Decision)) == 3 })

	// The display resolves the held sale through the broker.
	disp := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(wire.DisplayUsername("S001")).
		SetUsername(wire.DisplayUsername("S001")).SetPassword(auth.Password("display/S001")))
	if tok := disp.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("display connect: %v", tok.Error())
	}
	defer disp.Disconnect(100)
	publishFor := func(reviewID string, action wire.Action, pin string, id string) {
		cmd := wire.Command{ID: id, Type: wire.CmdResolve, Store: "S001", Register: "R1", ReviewID: reviewID,
			Action: action, PIN: wire.PIN(pin), By: "manager-sato", At: time.Now().UTC()}
		payload, err := cmd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if tok := disp.Publish(wire.CmdTopic("S001", "R1"), 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish := func(pin string, id string) { publishFor(held.ReviewID, wire.Approve, pin, id) }
	// The display hears the register's answer on the alerts topic.
	alerts := make(chan []byte, 64)
	if tok := disp.Subscribe(wire.AlertsTopic("S001", "R1"), 1, func(_ paho.Client, m paho.Message) {
		alerts <- append([]byte(nil), m.Payload()...)
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	const wrongPIN = "975310"
	publish(wrongPIN, "cmd-1") // wrong PIN: not applied, but reported back
	refused := func(ev event.Event) bool {
		return ev.Type == event.Refusal && ev.Resolution != nil && ev.Resolution.ReviewID == held.ReviewID
	}
	// nextRefusal waits for the register's refusal of a resolution of
	// reviewID on the alerts topic.
	nextRefusal := func(reviewID string) (event.Event, []byte) {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case b := <-alerts:
				ev, err := event.Parse(b)
				if err != nil {
					t.Fatalf("alerts topic: %v", err)
				}
				if ev.Type == event.Refusal && ev.Resolution != nil && ev.Resolution.ReviewID == reviewID {
					return ev, b
				}
			case <-deadline:
				t.Fatalf("no refusal of a resolution of %s on the alerts topic", reviewID)
			}
		}
	}
	ev, raw := nextRefusal(held.ReviewID)
	if strings.Contains(string(raw), wrongPIN) || strings.Contains(strings.ToLower(string(raw)), `"pin"`) {
		t.Fatalf("refusal carries the PIN: %s", raw)
	}
	if ev.Code != event.CodeWrongPIN || ev.Resolution.Action != event.Approve || ev.Resolution.By != "manager-sato" ||
		!strings.Contains(ev.Detail, event.RefusedBadPIN) || !strings.Contains(ev.Detail, held.ReviewID) {
		t.Fatalf("refusal %+v (%+v)", ev, ev.Resolution)
	}
	waitFor(t, "HQ to store the refused resolution", func() bool {
		return slices.ContainsFunc(hqEvents(event.Refusal), refused)
	})
	publish(testPIN, "cmd-2")
	var one agent.ReviewInfo
	waitFor(t, "the review to be approved over MQTT", func() bool {
		r.do(t, "GET", "/v1/reviews/"+held.ReviewID, nil, &one)
		return one.Resolution != nil
	})
	if one.Resolution.Action != "approve" || one.Resolution.By != "manager-sato" {
		t.Fatalf("resolution %+v", one.Resolution)
	}
	waitFor(t, "HQ to store the resolution", func() bool { return len(hqEvents(event.Resolution)) == 1 })
	// The register says why it cannot take a resolution of a review it no
	// longer holds open, or never held, with the right PIN too.
	publishFor(held.ReviewID, wire.Reject, testPIN, "cmd-3")
	if ev, _ := nextRefusal(held.ReviewID); ev.Code != event.CodeAlreadyResolved || ev.Resolution.Action != event.Reject {
		t.Fatalf("rejecting the approved review: %+v (%+v)", ev, ev.Resolution)
	}
	publishFor("sale-nobody-held", wire.Approve, testPIN, "cmd-4")
	if ev, _ := nextRefusal("sale-nobody-held"); ev.Code != event.CodeUnknownReview || !strings.HasSuffix(ev.Detail, "refused: no such review") {
		t.Fatalf("approving an unknown review: %+v (%+v)", ev, ev.Resolution)
	}
	r.do(t, "GET", "/v1/reviews/"+held.ReviewID, nil, &one)
	if one.Resolution == nil || one.Resolution.Action != "approve" {
		t.Fatalf("a refused resolution changed the review: %+v", one.Resolution)
	}

	// HQ denylists an account: the register denies it within moments.
	if _, err := svc.DenylistChange(context.Background(), store.ListChange{Add: []string{"hq-flagged"}, By: "test", Reason: "flagged"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the denylist to reach the register", func() bool {
		res, _ := r.decide(t, f.mint("hq-flagged", nil), line(onigiri, 1))
		return res.Outcome == policy.Deny && slices.Contains(fired(res), "denylist")
	})

	// A signed policy replaces the bootstrap file.
	p, err := policy.LoadFile(f.path("policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p.Metadata.Version = 7
	signed, err := bundle.SignPolicy(f.hqKey, "EdDSA", "hq1", p)
	if err != nil {
		t.Fatal(err)
	}
	pusher := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("hq-push").SetUsername("hq-push").SetPassword(auth.Password("hq-push")))
	if tok := pusher.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pusher.Disconnect(100)
	if tok := pusher.Publish(wire.PolicyTopic(wire.ScopeAll), 1, true, signed); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitFor(t, "the signed policy to apply", func() bool {
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		return st.Policy != nil && st.Policy.Version == 7 && st.Policy.Source == agent.SourceSigned
	})
	// The retained status names the version and when the policy was issued.
	waitFor(t, "HQ's fleet to show v7 with its issue date", func() bool {
		regs, err := hqStore.Fleet(context.Background())
		return err == nil && len(regs) == 1 && regs[0].Status.Policy != nil && regs[0].Status.Policy.Version == 7 &&
			regs[0].Status.Policy.IssuedAt.Equal(p.Metadata.IssuedAt) && !p.Metadata.IssuedAt.IsZero()
	})
	res, _ = r.decide(t, f.mint("hq-3", nil), line(onigiri, 1))
	if res.Decision.Policy.Version != 7 {
		t.Fatalf("decided by %+v", res.Decision.Policy)
	}

	// After a restart the stored signed bundle is in force again, even
	// without the bootstrap file.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(hqYAML + "")
	cfg.Policy.Bootstrap = f.path("missing.yaml")
	r2 := start(t, cfg, agent.Options{})
	var st agent.Status
	if r2.do(t, "GET", "/v1/status", nil, &st); st.Policy == nil || st.Policy.Version != 7 || st.Policy.Source != agent.SourceSigned || st.FailMode {
		t.Fatalf("status after restart %+v", st.Policy)
	}
}

func hqMQTT(auth *embedtest.Auth, url string) mqttconn.Config {
	c := auth.MQTT(url, "hq")
	c.MaxReconnect = 500 * time.Millisecond
	return c
}

package broker_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/internal/brokertest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"hq", "posguard/v1/policy/all", true, true},
		{"hq", "$share/g/posguard/v1/reg/+/+/events", false, true},
		{"hq-b", "$share/g/posguard/v1/reg/+/+/events", false, true},
		{"hq-push", "posguard/v1/policy/all", true, true},
		// Not HQ identities: no rights at all.
		{"hq-", "posguard/v1/policy/all", true, false},
		{"hqx", "posguard/v1/policy/all", true, false},
		{"hq-a/b", "posguard/v1/policy/all", true, false},
		{"hq-a.b", "posguard/v1/policy/all", true, false},
		// Only HQ may join a shared subscription, even to topics it may read.
		{"s1/r1", "$share/g/posguard/v1/reg/+/+/events", false, false},
		{"s1/r1", "$share/g/posguard/v1/reg/s1/r1/cmd", false, false},
		{"s1/r1", "$share/g/#", false, false},
		{"display/s1", "$share/g/posguard/v1/reg/s1/+/alerts", false, false},
		{"s1/r1", "$SYS/#", false, false},
		{"s1/r1", "posguard/v1/reg/s1/r1/events", true, true},
		{"s1/r1", "posguard/v1/reg/s1/r1/status", true, true},
		{"s1/r1", "posguard/v1/reg/s1/r2/events", true, false},
		{"s1/r1", "posguard/v1/reg/s2/r1/events", true, false},
		{"s1/r1", "posguard/v1/policy/all", true, false},
		{"s1/r1", "posguard/v1/denylist/delta", true, false},
		{"s1/r1", "posguard/v1/ack/s1/r1", true, false},
		{"s1/r1", "posguard/v1/policy/#", false, true},
		{"s1/r1", "posguard/v1/denylist/snapshot", false, true},
		{"s1/r1", "posguard/v1/allowlist/snapshot", false, true},
		{"s1/r1", "posguard/v1/allowlist/delta", false, true},
		{"s1/r1", "posguard/v1/allowlist/delta", true, false},
		{"s1/r1", "posguard/v1/allowlist/snapshot", true, false},
		{"display/s1", "posguard/v1/allowlist/delta", true, false},
		{"hq", "posguard/v1/allowlist/delta", true, true},
		{"s1/r1", "posguard/v1/reg/s1/r1/cmd", false, true},
		{"s1/r1", "posguard/v1/reg/s1/r2/cmd", false, false},
		{"s1/r1", "posguard/v1/reg/s1/+/cmd", false, false},
		{"s1/r1", "posguard/v1/reg/#", false, false},
		{"s1/r1", "posguard/v1/ack/s1/r1", false, true},
		{"s1/r1", "posguard/v1/ack/s1/+", false, false},
		{"s1/r1", "#", false, false},
		{"s1/+", "posguard/v1/reg/s1/x/events", true, false},
		{"s1/r1/x", "posguard/v1/reg/s1/r1/x/events", true, false},
		{"", "posguard/v1/policy/all", false, false},
		{"display/s1", "posguard/v1/reg/s1/+/alerts", false, true},
		{"display/s1", "posguard/v1/reg/s1/r3/status", false, true},
		{"display/s1", "posguard/v1/reg/s2/+/alerts", false, false},
		{"display/s1", "posguard/v1/reg/+/+/alerts", false, false},
		{"display/s1", "posguard/v1/reg/s1/r1/events", false, false},
		{"display/s1", "posguard/v1/reg/s1/r1/cmd", true, true},
		{"display/s1", "posguard/v1/reg/s2/r1/cmd", true, false},
		{"display/s1", "posguard/v1/reg/s1/r1/alerts", true, false},
		{"display/+", "posguard/v1/reg/x/+/alerts", false, false},
		// Facts: a register writes only its own, reads its own store's.
		{"s1/r1", "posguard/v1/store/s1/facts/r1", true, true},
		{"s1/r1", "posguard/v1/store/s1/facts/r2", true, false},
		{"s1/r1", "posguard/v1/store/s1/facts/+", true, false},
		{"s1/r1", "posguard/v1/store/s2/facts/r1", true, false},
		{"s1/r1", "posguard/v1/store/s1/facts/+", false, true},
		{"s1/r1", "posguard/v1/store/s1/facts/r2", false, true},
		{"s1/r1", "posguard/v1/store/s1/facts/#", false, false},
		{"s1/r1", "posguard/v1/store/s2/facts/+", false, false},
		{"s1/r1", "posguard/v1/store/+/facts/+", false, false},
		{"s1/r1", "posguard/v1/store/#", false, false},
		{"display/s1", "posguard/v1/store/s1/facts/+", false, false},
		{"display/s1", "posguard/v1/store/s1/alerts", false, true},
		{"display/s1", "posguard/v1/store/s2/alerts", false, false},
		{"display/s1", "posguard/v1/store/s1/alerts", true, false},
		{"s1/r1", "posguard/v1/store/s1/alerts", true, false},
		{"s1/r1", "posguard/v1/store/s1/alerts", false, false},
		{"bridge/s1", "posguard/v1/store/s1/alerts", false, true},
		{"bridge/s1", "posguard/v1/store/s1/alerts", true, false},
		{"bridge/s1", "posguard/v1/store/s2/alerts", false, false},
		{"display/s1", "posguard/v1/store/s1/facts/r1", true, false},
		{"hq", "posguard/v1/store/+/facts/+", false, true},
		// A store bridge speaks for its store's registers at HQ and
		// reads what HQ sends them, nothing of another store.
		{"bridge/s1", "posguard/v1/reg/s1/r1/events", true, true},
		{"bridge/s1", "posguard/v1/reg/s1/r9/status", true, true},
		{"bridge/s1", "posguard/v1/reg/s1/r1/cmd", true, true},
		{"bridge/s1", "posguard/v1/store/s1/facts/r2", true, true},
		{"bridge/s1", "posguard/v1/reg/s2/r1/events", true, false},
		{"bridge/s1", "posguard/v1/store/s2/facts/r1", true, false},
		{"bridge/s1", "posguard/v1/ack/s1/r1", true, false},
		{"bridge/s1", "posguard/v1/policy/all", true, false},
		{"bridge/s1", "posguard/v1/denylist/delta", true, false},
		{"bridge/s1", "posguard/v1/reg/bridge/s1/events", true, false},
		{"bridge/s1", "posguard/v1/policy/all", false, true},
		{"bridge/s1", "posguard/v1/policy/s1", false, true},
		{"bridge/s1", "posguard/v1/denylist/#", false, true},
		{"bridge/s1", "posguard/v1/allowlist/#", false, true},
		{"bridge/s1", "posguard/v1/allowlist/snapshot", true, false},
		{"bridge/s1", "posguard/v1/ack/s1/+", false, true},
		{"bridge/s1", "posguard/v1/ack/s2/+", false, false},
		{"bridge/s1", "posguard/v1/ack/+/+", false, false},
		{"bridge/s1", "posguard/v1/reg/s1/+/events", false, false},
		{"bridge/s1", "posguard/v1/store/s1/facts/+", false, false},
		{"bridge/s1", "$share/g/posguard/v1/ack/s1/+", false, false},
		{"bridge/+", "posguard/v1/reg/x/r1/events", true, false},
		{"bridge/all", "posguard/v1/reg/all/r1/events", true, false},
		// Reserved and malformed ids, by wire's rules.
		{"all/r1", "posguard/v1/reg/all/r1/events", true, false},
		{"bridge/r1", "posguard/v1/reg/bridge/r1/events", true, false},
		{"display/all", "posguard/v1/reg/all/+/alerts", false, false},
		{"s.1/r1", "posguard/v1/reg/s.1/r1/events", true, false},
	}
	for _, tt := range tests {
		if got := broker.Allowed(tt.user, tt.topic, tt.write); got != tt.want {
			t.Errorf("Allowed(%q, %q, write=%v) = %v, want %v", tt.user, tt.topic, tt.write, got, tt.want)
		}
	}
}

const wait = 5 * time.Second

// dial connects a real paho client; it returns the connect error.
func dial(t *testing.T, url string, o *paho.ClientOptions) (paho.Client, error) {
	t.Helper()
	o.AddBroker(url).SetConnectTimeout(wait).SetAutoReconnect(false)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// connect connects as identity with its password and its identity as
// client id, as every posguard program does.
func connect(t *testing.T, b *broker.Broker, a *embedtest.Auth, identity string) paho.Client {
	t.Helper()
	c, err := dial(t, b.URL(), paho.NewClientOptions().SetClientID(identity).
		SetUsername(identity).SetPassword(a.Password(identity)))
	if err != nil {
		t.Fatalf("connect %s: %v", identity, err)
	}
	return c
}

func subscribe(t *testing.T, c paho.Client, filter string, got chan<- string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		got <- fmt.Sprintf("%s %s", m.Topic(), m.Payload())
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	// paho keys the result by the filter without its $share/GROUP/.
	for _, code := range tok.(*paho.SubscribeToken).Result() {
		return code
	}
	t.Fatalf("subscribe %s: no return code", filter)
	return 0
}

func expect(t *testing.T, who string, got <-chan string, want string) {
	t.Helper()
	select {
	case m := <-got:
		if m != want {
			t.Fatalf("%s received %q, want %q", who, m, want)
		}
	case <-time.After(wait):
		t.Fatalf("%s never received %q", who, want)
	}
}

func silent(t *testing.T, who string, got <-chan string) {
	t.Helper()
	select {
	case m := <-got:
		t.Fatalf("%s received %q; nothing may get through", who, m)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestACLOverBroker checks the ACL where it matters: through a running
// broker, a register's publish outside its own topics never reaches HQ.
func TestACLOverBroker(t *testing.T) {
	b, a := embedtest.Start(t, "hq", "s1/r1")
	hq := connect(t, b, a, "hq")
	got := make(chan string, 16)
	subscribe(t, hq, "posguard/v1/#", got)

	// QoS 0, because mochi answers a refused QoS 1 publish from an MQTT
	// 3.1.1 client by disconnecting it; either way nothing may get through.
	reg := connect(t, b, a, "s1/r1")
	for _, topic := range []string{
		"posguard/v1/policy/all",       // a register must never push policy
		"posguard/v1/reg/s2/r1/events", // nor speak for another store
		"posguard/v1/reg/s1/r2/events", // nor another register
		"posguard/v1/reg/s1/r1/events", // its own: allowed, and sent last
	} {
		reg.Publish(topic, 0, false, "x").WaitTimeout(wait)
	}
	expect(t, "HQ", got, "posguard/v1/reg/s1/r1/events x")
	silent(t, "HQ", got)

	// A register may not subscribe to another register's commands.
	if code := subscribe(t, reg, "posguard/v1/reg/s1/r2/cmd", got); code != 0x80 {
		t.Fatalf("subscribe to another register's cmd: return code %#x, want 0x80 (refused)", code)
	}
}

// TestAuthentication: only a client that proves its identity, and uses it
// as its client id, gets in. Before, any username was taken on its word,
// "hq" without a password included, and granted every topic.
func TestAuthentication(t *testing.T) {
	b, a := embedtest.Start(t, "hq", "s1/r1", "display/s1")
	tests := []struct {
		name           string
		user, clientID string
		password       string // "=" means the identity's own
		ok             bool
	}{
		{"anonymous", "", "anon", "", false},
		{"hq without a password", "hq", "hq", "", false},
		{"hq with a wrong password", "hq", "hq", "guess", false},
		{"hq with the register's password", "hq", "hq", a.Password("s1/r1"), false},
		{"unknown identity", "s1/r9", "s1/r9", "x", false},
		{"password without a username", "", "s1/r1", a.Password("s1/r1"), false},
		{"client id of another identity", "s1/r1", "hq", "=", false},
		{"client id of another register", "s1/r1", "s1/r2", "=", false},
		{"empty client id", "s1/r1", "", "=", false},
		{"register", "s1/r1", "s1/r1", "=", true},
		{"display", "display/s1", "display/s1", "=", true},
		{"hq", "hq", "hq", "=", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := paho.NewClientOptions().SetClientID(tt.clientID).SetCleanSession(true)
			if tt.user != "" {
				o.SetUsername(tt.user)
			}
			switch tt.password {
			case "":
			case "=":
				o.SetPassword(a.Password(tt.user))
			default:
				o.SetPassword(tt.password)
			}
			c, err := dial(t, b.URL(), o)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				c.Disconnect(0)
				t.Fatal("connected")
			}
		})
	}
}

// TestPasswordFileOverBroker: a bcrypt password file, as an operator
// writes one, through a running broker. (One identity: under the race
// detector each cost-10 bcrypt takes seconds.)
func TestPasswordFileOverBroker(t *testing.T) {
	a := embedtest.NewFile(t, "s1/r1")
	b := a.Start("")
	for pw, ok := range map[string]bool{a.Password("s1/r1"): true, "guess": false} {
		o := paho.NewClientOptions().SetClientID("s1/r1").SetUsername("s1/r1").SetPassword(pw).
			AddBroker(b.URL()).SetConnectTimeout(time.Minute).SetAutoReconnect(false)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(time.Minute) {
			t.Fatal("connect timed out")
		}
		if (tok.Error() == nil) != ok {
			t.Errorf("password %q: connect error %v, want ok=%v", pw, tok.Error(), ok)
		}
		c.Disconnect(0)
	}
}

// TestClientIDCannotTakeOverASession replays the attack: the identity
// s1/r1, connecting with s1/r2's client id, received s1/r2's queued
// resolve command with a manager PIN in it.
func TestClientIDCannotTakeOverASession(t *testing.T) {
	b, a := embedtest.Start(t, "display/s1", "s1/r1", "s1/r2")
	r2got := make(chan string, 4)
	r2 := connect(t, b, a, "s1/r2")
	r2.Disconnect(0)
	// The persistent session of s1/r2, with its subscription, waits.
	r2opts := func() *paho.ClientOptions {
		return paho.NewClientOptions().SetClientID("s1/r2").SetUsername("s1/r2").
			SetPassword(a.Password("s1/r2")).SetCleanSession(false).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				r2got <- fmt.Sprintf("%s %s", m.Topic(), m.Payload())
			})
	}
	r2, err := dial(t, b.URL(), r2opts())
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, r2, "posguard/v1/reg/s1/r2/cmd", r2got)
	r2.Disconnect(0)

	disp := connect(t, b, a, "display/s1")
	if tok := disp.Publish("posguard/v1/reg/s1/r2/cmd", 1, false, "resolve pin=4321"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("display publish: %v", tok.Error())
	}

	spyGot := make(chan string, 4)
	spy := paho.NewClientOptions().SetClientID("s1/r2").SetUsername("s1/r1").
		SetPassword(a.Password("s1/r1")).SetCleanSession(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { spyGot <- string(m.Payload()) })
	if c, err := dial(t, b.URL(), spy); err == nil {
		c.Disconnect(0)
		t.Fatal("s1/r1 connected with s1/r2's client id")
	}
	silent(t, "the spy", spyGot)

	if _, err := dial(t, b.URL(), r2opts()); err != nil {
		t.Fatal(err)
	}
	expect(t, "s1/r2", r2got, "posguard/v1/reg/s1/r2/cmd resolve pin=4321")
}

// TestRegisterCannotJoinHQsShareGroup: a register subscribing to HQ's
// shared group would take every other event and, not allowed to read it,
// make the broker drop it. It is refused, and HQ gets every event.
func TestRegisterCannotJoinHQsShareGroup(t *testing.T) {
	b, a := embedtest.Start(t, "hq", "hq-b", "s1/r1", "s1/r2")
	group := "$share/ingest/posguard/v1/reg/+/+/events"
	hqGot := make(chan string, 32)
	if code := subscribe(t, connect(t, b, a, "hq"), group, hqGot); code == 0x80 {
		t.Fatalf("HQ's shared subscription: code %#x", code)
	}
	spyGot := make(chan string, 32)
	if code := subscribe(t, connect(t, b, a, "s1/r2"), group, spyGot); code != 0x80 {
		t.Fatalf("register joining HQ's share group: code %#x, want 0x80 (refused)", code)
	}
	r1 := connect(t, b, a, "s1/r1")
	for i := range 6 {
		if tok := r1.Publish("posguard/v1/reg/s1/r1/events", 1, false, fmt.Sprint(i)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for i := range 6 {
		expect(t, "HQ", hqGot, fmt.Sprintf("posguard/v1/reg/s1/r1/events %d", i))
	}
	silent(t, "the register in HQ's group", spyGot)

	// A second HQ identity may share the load.
	if code := subscribe(t, connect(t, b, a, "hq-b"), group, make(chan string, 32)); code == 0x80 {
		t.Fatalf("hq-b's shared subscription: code %#x", code)
	}
}

// TestWillOnForeignTopicRefused: mochi publishes a will without an ACL
// check, so a will that would forge another register's status (or replace
// the retained policy) is refused at connect.
func TestWillOnForeignTopicRefused(t *testing.T) {
	b, a := embedtest.Start(t, "s1/r1")
	for topic, ok := range map[string]bool{
		"posguard/v1/reg/s1/r1/status": true,
		"posguard/v1/reg/s1/r2/status": false,
		"posguard/v1/policy/all":       false,
	} {
		o := paho.NewClientOptions().SetClientID("s1/r1").SetUsername("s1/r1").
			SetPassword(a.Password("s1/r1")).SetWill(topic, "offline", 1, true)
		c, err := dial(t, b.URL(), o)
		if ok != (err == nil) {
			t.Errorf("will on %s: connect error %v, want ok=%v", topic, err, ok)
		}
		if c != nil {
			c.Disconnect(0)
		}
	}
}

// TestCertificateIdentity: over TLS the verified certificate's CN is the
// identity, whatever username the client sends, and the client id must be
// that CN.
func TestCertificateIdentity(t *testing.T) {
	pki := brokertest.NewPKI(t, t.TempDir(), "s1/r1")
	b, err := broker.Start(broker.Options{TLS: pki.ServerTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	clientTLS := func(withCert bool) *tls.Config {
		cfg, err := mqttconn.Config{Broker: b.URL(), CAFile: pki.CAFile}.TLS()
		if err != nil {
			t.Fatal(err)
		}
		if withCert {
			pair, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	if _, err := dial(t, b.URL(), paho.NewClientOptions().SetClientID("hq").SetUsername("hq").SetTLSConfig(clientTLS(false))); err == nil {
		t.Fatal("a client without a certificate connected")
	}
	if _, err := dial(t, b.URL(), paho.NewClientOptions().SetClientID("hq").SetUsername("hq").SetTLSConfig(clientTLS(true))); err == nil {
		t.Fatal("the s1/r1 certificate connected with client id hq")
	}
	c, err := dial(t, b.URL(), paho.NewClientOptions().SetClientID("s1/r1").SetUsername("hq").SetTLSConfig(clientTLS(true)))
	if err != nil {
		t.Fatalf("s1/r1 certificate: %v", err)
	}
	// The username it claimed gave it nothing: it is s1/r1.
	if code := subscribe(t, c, "posguard/v1/#", make(chan string, 1)); code != 0x80 {
		t.Fatalf("certificate s1/r1 claiming username hq subscribed to everything: code %#x", code)
	}
}

func TestStartRefuses(t *testing.T) {
	a := embedtest.New(t, "hq")
	pki := brokertest.NewPKI(t, t.TempDir(), "hq")
	noClientCerts := pki.ServerTLS.Clone()
	noClientCerts.ClientAuth = tls.NoClientCert
	systemRoots := pki.ServerTLS.Clone()
	systemRoots.ClientCAs = nil
	for name, o := range map[string]broker.Options{
		"no authentication":                 {},
		"TLS without client certificates":   {TLS: noClientCerts},
		"client certificates of any CA":     {TLS: systemRoots, Passwords: a.Passwords()},
		"plain TCP beyond loopback":         {Addr: "0.0.0.0:0", Passwords: a.Passwords()},
		"plain TCP on a name, not loopback": {Addr: "example.com:0", Passwords: a.Passwords()},
	} {
		if b, err := broker.Start(o); err == nil {
			b.Close()
			t.Errorf("%s: started", name)
		}
	}
}

// TestFactsOverBroker: the registers of a store share facts through a
// running broker; a register of another store reads none of them and no
// register can publish facts in another's name.
func TestFactsOverBroker(t *testing.T) {
	b, a := embedtest.Start(t, "hq", "s1/r1", "s1/r2", "s2/r1")
	hqGot, r1Got, r2Got, spyGot := make(chan string, 16), make(chan string, 16), make(chan string, 16), make(chan string, 16)
	subscribe(t, connect(t, b, a, "hq"), wire.HQFactsFilter, hqGot)
	r1 := connect(t, b, a, "s1/r1")
	subscribe(t, r1, wire.FactsFilter("s1"), r1Got)
	r2 := connect(t, b, a, "s1/r2")
	subscribe(t, r2, wire.FactsFilter("s1"), r2Got)
	spy := connect(t, b, a, "s2/r1")
	for _, filter := range []string{wire.FactsFilter("s1"), wire.FactsTopic("s1", "r1"), wire.HQFactsFilter, "posguard/v1/store/#", "#"} {
		if code := subscribe(t, spy, filter, spyGot); code != 0x80 {
			t.Errorf("s2/r1 subscribing to %s: return code %#x, want 0x80 (refused)", filter, code)
		}
	}
	subscribe(t, spy, wire.FactsFilter("s2"), spyGot)

	// QoS 0 for the forgeries: mochi disconnects a 3.1.1 client whose
	// QoS 1 publish it refuses. The allowed publish goes last, so its
	// arrival proves the forgeries were dropped, not delayed.
	for _, topic := range []string{wire.FactsTopic("s1", "r2"), wire.FactsTopic("s2", "r1"), "posguard/v1/store/s1/facts"} {
		r1.Publish(topic, 0, false, "forged").WaitTimeout(wait)
	}
	own := wire.FactsTopic("s1", "r1")
	if tok := r1.Publish(own, 1, false, "r1 facts"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish own facts: %v", tok.Error())
	}
	for who, got := range map[string]chan string{"HQ": hqGot, "s1/r1": r1Got, "s1/r2": r2Got} {
		expect(t, who, got, own+" r1 facts")
	}
	if tok := r2.Publish(wire.FactsTopic("s1", "r2"), 1, false, "r2 facts"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish own facts: %v", tok.Error())
	}
	expect(t, "s1/r1", r1Got, wire.FactsTopic("s1", "r2")+" r2 facts")
	expect(t, "HQ", hqGot, wire.FactsTopic("s1", "r2")+" r2 facts")
	expect(t, "s1/r2", r2Got, wire.FactsTopic("s1", "r2")+" r2 facts")
	silent(t, "s2/r1", spyGot)
	silent(t, "HQ", hqGot)
}

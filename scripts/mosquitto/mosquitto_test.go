package mosquitto_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/internal/mosquittotest"
	"github.com/posguard/posguard/wire"
)

const wait = mosquittotest.Wait

type msg struct{ topic, payload string }

// client is a connected paho client recording what it receives.
type client struct {
	mqtt.Client
	name string
	got  chan msg
	seen map[msg]bool // what expectAll received
}

func connect(t *testing.T, addr string, cfg *tls.Config, id string) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetClientID(id).
		SetTLSConfig(cfg).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(wait)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, fmt.Errorf("connect %s: timeout", id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// connectWithWill connects a client whose socket the test holds, so it can
// vanish without a DISCONNECT and make the broker publish its will.
func connectWithWill(t *testing.T, addr, certs, name, willTopic string, will []byte) (net.Conn, string, error) {
	t.Helper()
	id := fmt.Sprintf("test-will-%s-%d", name, clientSeq.Add(1))
	cfg := mosquittotest.TLSConfig(t, certs, certs, name)
	conns := make(chan net.Conn, 1)
	opts := mqtt.NewClientOptions().AddBroker("ssl://"+addr).
		SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(wait).
		SetBinaryWill(willTopic, will, 1, true).
		SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", uri.Host, cfg)
			if err != nil {
				return nil, err
			}
			conns <- c
			return c, nil
		})
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, "", fmt.Errorf("connect %s: timeout", name)
	}
	if err := tok.Error(); err != nil {
		return nil, "", err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return <-conns, id, nil
}

var clientSeq atomic.Int64

func newClient(t *testing.T, addr, certs, name string) *client {
	t.Helper()
	// Its identity as client id, as the posguard programs connect: the
	// client id a hijacker would borrow.
	cfg := mosquittotest.TLSConfig(t, certs, certs, name)
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := connect(t, addr, cfg, leaf.Subject.CommonName)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &client{Client: c, name: name, got: make(chan msg, 100)}
}

func (c *client) subscribe(t *testing.T, filters ...string) {
	t.Helper()
	for _, f := range filters {
		tok := c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			c.got <- msg{m.Topic(), string(m.Payload())}
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("%s subscribe %s: %v", c.name, f, tok.Error())
		}
	}
}

func (c *client) publish(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s publish %s: %v", c.name, topic, tok.Error())
	}
}

// expect waits for the next message and requires it to be want: anything
// else arriving first is a message that should never have got through.
func (c *client) expect(t *testing.T, want msg) {
	t.Helper()
	select {
	case m := <-c.got:
		if m != want {
			t.Fatalf("%s got %s %q, want %s %q", c.name, m.topic, m.payload, want.topic, want.payload)
		}
	case <-time.After(wait):
		t.Fatalf("%s: %s %q never arrived", c.name, want.topic, want.payload)
	}
}

func TestShippedBrokerConfig(t *testing.T) {
	bin := mosquittotest.Binary(t)
	certs := t.TempDir()
	mosquittotest.GenCerts(t, certs, "-q", "b", "-d", "s042", "-d", "s043", "-b", "s042", "-r", "s042/r1", "-r", "s042/r2", "-r", "s042/r3", "-r", "s043/r1")
	addr, logs := mosquittotest.Start(t, bin, certs)

	// HQ sees everything posguard; every negative case below is "HQ never
	// received it", proven by a sentinel that the same client sends right
	// after: the broker keeps one publisher's messages in order, so the
	// sentinel arriving first means the forbidden message was dropped.
	// The broker makes every client id the certificate's CN, so each
	// connection below has an identity of its own: a second connection
	// with the same certificate would take the first one's place.
	hq := newClient(t, addr, certs, "hq")
	hq.subscribe(t, "posguard/#")
	r1 := newClient(t, addr, certs, "reg.s042.r1")
	r1.subscribe(t, wire.AgentFilters("s042", "r1")...)
	r2 := newClient(t, addr, certs, "reg.s042.r2")
	r2.subscribe(t, wire.AgentFilters("s042", "r2")...)
	other := newClient(t, addr, certs, "reg.s043.r1")
	other.subscribe(t, wire.AgentFilters("s043", "r1")...)

	t.Run("register events reach HQ", func(t *testing.T) {
		for _, topic := range []string{wire.EventsTopic("s042", "r1"), wire.AlertsTopic("s042", "r1"), wire.StatusTopic("s042", "r1"), wire.CmdTopic("s042", "r1")} {
			r1.publish(t, topic, "ok", false)
			hq.expect(t, msg{topic, "ok"})
		}
		r1.expect(t, msg{wire.CmdTopic("s042", "r1"), "ok"}) // its own resync request, heard back
	})

	t.Run("HQ shared subscription", func(t *testing.T) {
		hq2 := newClient(t, addr, certs, "hq-b")
		hq2.subscribe(t, wire.HQEventsFilter("hqgroup"))
		r2.publish(t, wire.EventsTopic("s042", "r2"), "shared", false)
		hq2.expect(t, msg{wire.EventsTopic("s042", "r2"), "shared"})
		hq.expect(t, msg{wire.EventsTopic("s042", "r2"), "shared"})
	})

	// The attack of issue 13: a register in HQ's share group was dealt
	// every other event and, not allowed to read it, made the broker drop
	// it. The plugin refuses the subscription; HQ gets every event.
	t.Run("register cannot join HQ's share group", func(t *testing.T) {
		group := wire.HQEventsFilter("ingest")
		hqShare := newClient(t, addr, certs, "hq-b")
		hqShare.subscribe(t, group)
		for _, name := range []string{"reg.s042.r3", "display.s042"} {
			c := newClient(t, addr, certs, name)
			tok := c.Subscribe(group, 1, func(_ mqtt.Client, m mqtt.Message) {
				t.Errorf("%s in HQ's share group got %s", name, m.Topic())
			})
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("%s subscribe: %v", name, tok.Error())
			}
			for _, code := range tok.(*mqtt.SubscribeToken).Result() {
				if code != 0x80 {
					t.Errorf("%s joining HQ's share group: return code %#x, want 0x80 (refused)", name, code)
				}
			}
			c.Disconnect(0)
		}
		for i := range 4 {
			ev := msg{wire.EventsTopic("s042", "r1"), fmt.Sprint("shared ", i)}
			r1.publish(t, ev.topic, ev.payload, false)
			hqShare.expect(t, ev)
			hq.expect(t, ev)
		}
		hqShare.Disconnect(0)
	})

	t.Run("register cannot publish outside its subtree", func(t *testing.T) {
		for _, topic := range []string{
			wire.PolicyTopic(wire.ScopeAll),
			wire.PolicyTopic("s042"),
			wire.DenylistDelta,
			wire.DenylistSnapshot,
			wire.AllowlistDelta,
			wire.AllowlistSnapshot,
			wire.EventsTopic("s042", "r2"),
			wire.EventsTopic("s043", "r1"),
			wire.StatusTopic("s043", "r1"),
			wire.CmdTopic("s042", "r2"),
			wire.AckTopic("s042", "r1"), // acking itself
			"posguard/v1/reg/s042",
		} {
			r1.publish(t, topic, "forged", true)
			sentinel := msg{wire.EventsTopic("s042", "r1"), "after " + topic}
			r1.publish(t, sentinel.topic, sentinel.payload, false)
			hq.expect(t, sentinel)
		}
		// Nothing forged was retained either: a new subscriber to the
		// policy and denylist topics finds them empty, and sees HQ's.
		late := newClient(t, addr, certs, "reg.s042.r3")
		late.subscribe(t, wire.PolicyTopic(wire.ScopeAll), wire.DenylistSnapshot, wire.AllowlistSnapshot)
		hqPolicy := msg{wire.PolicyTopic(wire.ScopeAll), "signed by hq"}
		hq.publish(t, hqPolicy.topic, hqPolicy.payload, true)
		late.expect(t, hqPolicy)
		r1.expect(t, hqPolicy)
		hq.expect(t, hqPolicy)
		r2.expect(t, hqPolicy)
		other.expect(t, hqPolicy)
	})

	t.Run("register reads only its own commands and acks", func(t *testing.T) {
		r1.subscribe(t, wire.CmdTopic("s042", "r2"), wire.AckTopic("s042", "r2"))
		hq.publish(t, wire.CmdTopic("s042", "r2"), "cmd r2", false)
		hq.publish(t, wire.AckTopic("s042", "r2"), "ack r2", false)
		hq.publish(t, wire.AckTopic("s042", "r1"), "ack r1", false)
		r2.expect(t, msg{wire.CmdTopic("s042", "r2"), "cmd r2"})
		r2.expect(t, msg{wire.AckTopic("s042", "r2"), "ack r2"})
		r1.expect(t, msg{wire.AckTopic("s042", "r1"), "ack r1"})
		hq.expect(t, msg{wire.CmdTopic("s042", "r2"), "cmd r2"})
		hq.expect(t, msg{wire.AckTopic("s042", "r2"), "ack r2"})
		hq.expect(t, msg{wire.AckTopic("s042", "r1"), "ack r1"})
	})

	t.Run("tills of a store see each other's facts", func(t *testing.T) {
		r1.subscribe(t, wire.FactsFilter("s042"))
		r2.subscribe(t, wire.FactsFilter("s042"))
		for _, f := range []msg{{wire.FactsTopic("s042", "r1"), "r1 facts"}, {wire.FactsTopic("s042", "r2"), "r2 facts"}} {
			c := r1
			if f.topic == wire.FactsTopic("s042", "r2") {
				c = r2
			}
			c.publish(t, f.topic, f.payload, false)
			r1.expect(t, f)
			r2.expect(t, f)
			hq.expect(t, f)
		}
	})

	t.Run("a register of another store sees no facts of this one", func(t *testing.T) {
		other.subscribe(t, wire.FactsFilter("s042"), wire.FactsTopic("s042", "r1"), wire.HQFactsFilter, "posguard/v1/store/#")
		f := msg{wire.FactsTopic("s042", "r1"), "not for s043"}
		r1.publish(t, f.topic, f.payload, false)
		r1.expect(t, f)
		r2.expect(t, f)
		hq.expect(t, f) // routed by now, to every subscriber it will reach
		// Its own store's facts reach it (four of its subscriptions
		// match), and nothing of s042's came first.
		sentinel := msg{wire.FactsTopic("s043", "r1"), "s043 sentinel"}
		hq.publish(t, sentinel.topic, sentinel.payload, false)
		hq.expect(t, sentinel)
		for range 2 {
			other.expect(t, sentinel)
		}
	})

	t.Run("register cannot publish another's facts", func(t *testing.T) {
		for _, topic := range []string{wire.FactsTopic("s042", "r2"), wire.FactsTopic("s043", "r1"), "posguard/v1/store/s042/facts"} {
			r1.publish(t, topic, "forged", false)
		}
		sentinel := msg{wire.FactsTopic("s042", "r1"), "after forged facts"}
		r1.publish(t, sentinel.topic, sentinel.payload, false)
		r1.expect(t, sentinel)
		r2.expect(t, sentinel)
		hq.expect(t, sentinel)
	})

	t.Run("store bridge speaks for its own store only", func(t *testing.T) {
		b := newClient(t, addr, certs, "bridge.s042")
		b.subscribe(t, wire.AckTopic("s042", "+"), wire.AckTopic("s043", "r1"), wire.HQFactsFilter, "posguard/v1/reg/+/+/events")
		for _, topic := range []string{wire.EventsTopic("s043", "r1"), wire.FactsTopic("s043", "r1"),
			wire.AckTopic("s042", "r1"), wire.PolicyTopic(wire.ScopeAll), wire.DenylistDelta, "posguard/v1/reg/bridge/s042/events"} {
			b.publish(t, topic, "forged by the bridge", false)
		}
		for _, m := range []msg{{wire.EventsTopic("s042", "r3"), "via the bridge"}, {wire.FactsTopic("s042", "r3"), "facts via the bridge"}} {
			b.publish(t, m.topic, m.payload, false)
			hq.expect(t, m)
		}
		r1.expect(t, msg{wire.FactsTopic("s042", "r3"), "facts via the bridge"})
		r2.expect(t, msg{wire.FactsTopic("s042", "r3"), "facts via the bridge"})
		for _, ack := range []msg{{wire.AckTopic("s043", "r1"), "ack s043"}, {wire.AckTopic("s042", "r2"), "ack r2"}} {
			hq.publish(t, ack.topic, ack.payload, false)
			hq.expect(t, ack)
		}
		other.expect(t, msg{wire.AckTopic("s043", "r1"), "ack s043"})
		r2.expect(t, msg{wire.AckTopic("s042", "r2"), "ack r2"})
		// Neither the events, the facts nor s043's ack came first.
		b.expect(t, msg{wire.AckTopic("s042", "r2"), "ack r2"})
		b.Disconnect(0)
	})

	t.Run("display reads its store only and commands its registers only", func(t *testing.T) {
		d := newClient(t, addr, certs, "display.s042")
		d.subscribe(t, wire.DisplayFilters("s042")...)
		d.subscribe(t, wire.DisplayFilters("s043")...) // not allowed to read: must stay silent
		d.subscribe(t, "posguard/v1/reg/+/+/alerts")

		foreign := msg{wire.AlertsTopic("s043", "r1"), "s043 alert"}
		other.publish(t, foreign.topic, foreign.payload, false)
		hq.expect(t, foreign) // routed by now, to every subscriber it will reach
		own := msg{wire.AlertsTopic("s042", "r1"), "s042 alert"}
		r1.publish(t, own.topic, own.payload, false)
		hq.expect(t, own)
		d.expect(t, own)
		d.expect(t, own) // twice: two of its subscriptions match
		select {
		case m := <-d.got:
			t.Fatalf("display got %s %q", m.topic, m.payload)
		default:
		}
		// HQ's chain alerts: the display reads its store's; a register or
		// a display cannot forge one.
		r1.publish(t, wire.StoreAlertsTopic("s042"), "forged by a register", false)
		d.publish(t, wire.StoreAlertsTopic("s042"), "forged by the display", false)
		hq.publish(t, wire.StoreAlertsTopic("s043"), "hq alert s043", false)
		chainAlert := msg{wire.StoreAlertsTopic("s042"), "hq alert s042"}
		hq.publish(t, chainAlert.topic, chainAlert.payload, false)
		d.expect(t, chainAlert)
		// HQ reads everything posguard, its own alerts too, and neither
		// forgery before them.
		hq.expect(t, msg{wire.StoreAlertsTopic("s043"), "hq alert s043"})
		hq.expect(t, chainAlert)

		forged := wire.CmdTopic("s043", "r1")
		d.publish(t, forged, "resolve", false)
		cmd := msg{wire.CmdTopic("s042", "r1"), "resolve"}
		d.publish(t, cmd.topic, cmd.payload, false)
		hq.expect(t, cmd)
		r1.expect(t, cmd)
		for _, topic := range []string{wire.EventsTopic("s042", "r1"), wire.PolicyTopic(wire.ScopeAll), "posguard/v1/reg/display/s042/events"} {
			d.publish(t, topic, "display forged", false)
		}
		d.publish(t, cmd.topic, "sentinel", false)
		hq.expect(t, msg{cmd.topic, "sentinel"})
		r1.expect(t, msg{cmd.topic, "sentinel"})
	})

	// The attacks of issue 13: a register certificate connecting with
	// client id "hq" kicked HQ off; one using another register's client id
	// would take over its session and the commands queued in it.
	t.Run("client id is the certificate's identity", func(t *testing.T) {
		for _, id := range []string{"hq", "s042/r2"} {
			c, err := connect(t, addr, mosquittotest.TLSConfig(t, certs, certs, "reg.s042.r3"), id)
			if err != nil {
				continue // refused: as good
			}
			// Still connected as s042/r3 and nothing else: it reads no
			// command of r2's, and HQ and r2 keep their connections.
			c.Subscribe(wire.CmdTopic("s042", "r2"), 1, func(_ mqtt.Client, m mqtt.Message) {
				t.Errorf("s042/r3 with client id %s got %s %q", id, m.Topic(), m.Payload())
			}).WaitTimeout(wait)
			hq.publish(t, wire.CmdTopic("s042", "r2"), "cmd for r2 only", false)
			hq.expect(t, msg{wire.CmdTopic("s042", "r2"), "cmd for r2 only"})
			r2.expect(t, msg{wire.CmdTopic("s042", "r2"), "cmd for r2 only"})
			c.Disconnect(0)
		}
		if !hq.IsConnectionOpen() || !r2.IsConnectionOpen() {
			t.Fatalf("a borrowed client id took a session over: HQ connected %v, s042/r2 connected %v", hq.IsConnectionOpen(), r2.IsConnectionOpen())
		}
		sentinel := msg{wire.EventsTopic("s042", "r1"), "after client id attempts"}
		r1.publish(t, sentinel.topic, sentinel.payload, false)
		hq.expect(t, sentinel)
	})

	t.Run("last will marks the register offline", func(t *testing.T) {
		will, err := wire.Offline("s042", "r2", "test", time.Date(2019, 7, 3, 0, 0, 0, 0, time.UTC)).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		conn, _, err := connectWithWill(t, addr, certs, "reg.s042.r2", wire.StatusTopic("s042", "r2"), will)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close() // the register dies without saying goodbye
		hq.expect(t, msg{wire.StatusTopic("s042", "r2"), string(will)})
		late := newClient(t, addr, certs, "display.s042")
		late.subscribe(t, wire.DisplayFilters("s042")...)
		select {
		case m := <-late.got:
			st, err := wire.ParseStatus([]byte(m.payload))
			if err != nil || st.Online || m.topic != wire.StatusTopic("s042", "r2") {
				t.Fatalf("retained status %s %q: %+v %v", m.topic, m.payload, st, err)
			}
		case <-time.After(wait):
			t.Fatal("no retained offline status for a display that subscribes later")
		}
	})

	t.Run("a will on another register's topic never arrives", func(t *testing.T) {
		will, _ := wire.Offline("s043", "r1", "test", time.Now()).Marshal()
		// s042/r3: the only identity whose connection has not been
		// closed before, so the log line below is this one's.
		conn, _, err := connectWithWill(t, addr, certs, "reg.s042.r3", wire.StatusTopic("s043", "r1"), will)
		if err != nil {
			return // refused at connect: as good
		}
		conn.Close()
		mosquittotest.WaitLog(t, logs, "Client s042/r3 closed its connection")
		sentinel := msg{wire.EventsTopic("s042", "r1"), "after forged will"}
		r1.publish(t, sentinel.topic, sentinel.payload, false)
		hq.expect(t, sentinel)
	})

	t.Run("no certificate refused", func(t *testing.T) {
		if c, err := connect(t, addr, mosquittotest.TLSConfig(t, certs, "", ""), "anon"); err == nil {
			c.Disconnect(0)
			t.Fatal("a client without a certificate connected")
		}
	})

	t.Run("certificate of another CA refused", func(t *testing.T) {
		rogue := t.TempDir()
		mosquittotest.GenCerts(t, rogue, "-r", "s042/r1")
		cfg := mosquittotest.TLSConfig(t, certs, rogue, "reg.s042.r1")
		if c, err := connect(t, addr, cfg, "rogue"); err == nil {
			c.Disconnect(0)
			t.Fatal("a certificate from another CA connected")
		}
	})

	select {
	case m := <-hq.got:
		t.Errorf("HQ got an unexpected %s %q", m.topic, m.payload)
	default:
	}
}

package display

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/display/board"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// inbound is one MQTT message handed from paho's goroutine to the pump.
type inbound struct {
	topic   string
	payload []byte
}

// mqttLink is the display's broker connection.
type mqttLink struct {
	client paho.Client
}

// mqttOptions builds the client. With ConnectRetry the first connection is
// retried in the background, so a display started before its broker comes
// up by itself; AutoReconnect does the same after a drop. Subscriptions are
// made in the on-connect handler so they come back after every reconnect;
// the handler that takes the messages is there before the first
// connection, for what a persistent session delivers at once.
// With a state file the session is persistent under the client id kept
// there: the broker queues the alerts (QoS 1) published while the display
// is down, and the board, restored from the file, settles their deadlines.
// Without one it is clean, as nothing would carry the id to the next start.
func (s *Server) mqttOptions() (*paho.ClientOptions, error) {
	return s.cfg.MQTT.Options(mqttconn.Client{
		ID:    s.clientID,
		Clean: s.cfg.StateFile == "",
		// In order: a resolution must not overtake the alert it resolves.
		// The handler only copies into a channel, so order costs nothing.
		Handler:   s.onMessage,
		OnConnect: s.onConnect,
		OnLost:    func(error) { s.setConnected(false) },
		// Short, so the page says "broker lost" soon after it is.
		KeepAlive: 10 * time.Second,
		Log:       s.log,
	})
}

// dial starts the client; with ConnectRetry its token completes only once
// connected, so it is not waited for: the page shows "broker lost"
// meanwhile.
func (s *Server) dial() *mqttLink {
	c := paho.NewClient(s.mqttOpts)
	c.Connect()
	return &mqttLink{client: c}
}

func (l *mqttLink) close() { l.client.Disconnect(250) }

func (s *Server) onConnect(c paho.Client) {
	filters := map[string]byte{}
	for _, f := range wire.DisplayFilters(s.cfg.Store) {
		filters[f] = 1
	}
	tok := c.SubscribeMultiple(filters, nil) // the default handler takes them
	// Waiting here would hold paho's connect path; check in the
	// background and mark the link up only once subscribed, so the page
	// never shows "live" while nothing can arrive.
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			s.log.Error("subscribe to store topics", "filters", wire.DisplayFilters(s.cfg.Store), "err", tok.Error())
			return
		}
		if !c.IsConnectionOpen() {
			return // lost again meanwhile; the next connect tries again
		}
		s.log.Info("subscribed to store topics")
		s.setConnected(true)
	}()
}

// onMessage runs on paho's goroutines and must never block: it copies the
// message into the inbox and returns. A full inbox means the pump is stuck;
// dropping and saying so beats stalling the MQTT client.
func (s *Server) onMessage(_ paho.Client, m paho.Message) {
	in := inbound{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)}
	select {
	case s.inbox <- in:
	default:
		s.log.Error("display inbox full, message dropped", "topic", in.topic)
	}
}

func (s *Server) pump(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-s.inbox:
			if err := s.apply(in.topic, in.payload); err != nil {
				s.log.Warn("ignored message", "topic", in.topic, "err", err)
			}
		}
	}
}

// errForeign is a message for another store. The subscription makes it
// impossible with a well-behaved broker; the check makes it impossible,
// full stop.
var errForeign = errors.New("not this store's message")

// apply checks one message against its topic and puts it on the board.
// Everything from the broker is untrusted: the topic must be this store's,
// and the payload must name the same store and register as its topic.
func (s *Server) apply(topic string, payload []byte) error {
	if topic == wire.StoreAlertsTopic(s.cfg.Store) {
		return s.applyChainAlert(payload)
	}
	store, reg, kind, err := wire.ParseRegTopic(topic)
	if err != nil {
		return err
	}
	if store != s.cfg.Store {
		return fmt.Errorf("%w: store %s", errForeign, store)
	}
	switch kind {
	case wire.KindStatus:
		st, err := wire.ParseStatus(payload)
		if err != nil {
			return err
		}
		if st.Store != store || st.Register != reg {
			return fmt.Errorf("status from %s/%s on the topic of %s/%s", st.Store, st.Register, store, reg)
		}
		if t, ok := s.board.Status(tileFrom(st)); ok {
			s.broadcast("register", t)
		}
	case wire.KindAlerts:
		ev, err := event.Parse(payload)
		if err != nil {
			return err
		}
		if ev.Store != store || ev.Register != reg {
			return fmt.Errorf("event from %s/%s on the topic of %s/%s", ev.Store, ev.Register, store, reg)
		}
		switch ev.Type {
		case event.Alert:
			if a, ok := s.board.Alert(alertFrom(ev, s.cfg.ReviewTimeout), s.now()); ok {
				s.broadcast("alert", a)
			}
		case event.Resolution:
			s.pins.Right(pinKey(ev.Register, ev.Resolution.ReviewID))
			if a, ok := s.board.Resolve(resolutionFrom(ev)); ok {
				s.broadcast("alert", a)
			}
		case event.Refusal:
			if ev.Resolution == nil {
				return errors.New("refusal without a review on an alerts topic")
			}
			why := refusalDetail(ev)
			if why == board.BadPIN || why == board.PINGuessing {
				s.pins.Wrong(pinKey(ev.Register, ev.Resolution.ReviewID))
			} else {
				s.pins.Right(pinKey(ev.Register, ev.Resolution.ReviewID))
			}
			if a, ok := s.board.Refuse(ev.Register, ev.Resolution.ReviewID, why); ok {
				s.broadcast("alert", a)
			}
		default:
			return fmt.Errorf("event type %q on an alerts topic", ev.Type)
		}
	default:
		return fmt.Errorf("unexpected %s topic", kind)
	}
	return nil
}

// errBrokerDown is returned when a resolution cannot be sent.
var errBrokerDown = errors.New("broker not connected")

// publishCommand sends a command QoS 1 and waits for the broker to take it.
func (s *Server) publishCommand(ctx context.Context, c wire.Command) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	if s.mqtt == nil || !s.mqtt.client.IsConnectionOpen() {
		return errBrokerDown
	}
	tok := s.mqtt.client.Publish(wire.CmdTopic(c.Store, c.Register), 1, false, b)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("publish command %s: %w", c.ID, ctx.Err())
	case <-time.After(5 * time.Second):
		return fmt.Errorf("publish command %s: %w (no PUBACK in 5s)", c.ID, errBrokerDown)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish command %s: %w", c.ID, err)
	}
	return nil
}

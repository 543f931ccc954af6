package hq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// JetStream makes HQ consume the registers' events, alerts and commands
// natively from a NATS cluster (docs/DESIGN.md, "Clustered broker"):
// registers still speak MQTT to any node; the nodes' MQTT gateway puts
// their messages on NATS subjects, a replicated work-queue stream keeps
// them, and every HQ instance pulls from one durable consumer, so each
// message goes to one instance and is removed once that instance has
// stored it and acknowledged it. MQTT's $share, which the NATS gateway does
// not offer, is not needed.
type JetStream struct {
	URLs     string // nats://n1:4222,nats://n2:4222
	Stream   string // default DefaultStream
	Consumer string // durable consumer shared by HQ instances; default DefaultConsumer
	Replicas int    // stream replicas; default 3 (1 on a single server)
	CAFile   string
	CertFile string // client certificate (the shipped cluster maps its CN to a user)
	KeyFile  string
	// AckWait is how long a message handed to an instance may stay
	// unacknowledged before it goes to another (an instance that died).
	AckWait time.Duration
}

// Defaults of JetStream.
const (
	DefaultStream   = "POSGUARD_REG"
	DefaultConsumer = "hq"
	// jsPending bounds the messages handed out and not yet acknowledged,
	// per consumer, well inside ingestQueue.
	jsPending = 20_000
)

func (j *JetStream) validate() error {
	if j.URLs == "" {
		return errors.New("nats: URLs required")
	}
	if (j.CertFile == "") != (j.KeyFile == "") {
		return errors.New("nats: certFile and keyFile: give both or neither")
	}
	j.Stream = cmp.Or(j.Stream, DefaultStream)
	j.Consumer = cmp.Or(j.Consumer, DefaultConsumer)
	j.Replicas = cmp.Or(j.Replicas, 3)
	j.AckWait = cmp.Or(j.AckWait, 30*time.Second)
	return nil
}

// jsSource is a running JetStream consumer feeding the ingest queue.
type jsSource struct {
	nc *nats.Conn
	cc jetstream.ConsumeContext
}

// startJetStream connects, makes sure the stream and the consumer exist
// (every instance declares the same ones; the calls are idempotent), and
// starts pulling. nats.go reconnects on its own, to any node; creating the
// stream needs a JetStream leader, which a cluster that is still forming
// may not have yet, so that step is tried again until ctx ends.
func (s *Service) startJetStream(ctx context.Context) (*jsSource, error) {
	j := s.cfg.JetStream
	opts := []nats.Option{
		nats.Name(s.cfg.ClientID), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("NATS connection lost; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { s.log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
	}
	if j.CAFile != "" {
		opts = append(opts, nats.RootCAs(j.CAFile))
	}
	if j.CertFile != "" {
		opts = append(opts, nats.ClientCert(j.CertFile, j.KeyFile))
	}
	nc, err := nats.Connect(j.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", mqttconn.Redact(j.URLs), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	var cons jetstream.Consumer
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		if cons, err = declare(ctx, js, j); err == nil {
			break
		}
		s.log.Warn("JetStream stream or consumer not ready; retrying", "stream", j.Stream, "retryIn", wait, "err", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("nats: %w", err)
		case <-time.After(wait):
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		topic, err := wire.TopicOfSubject(m.Subject())
		if err != nil {
			s.m.rejected.Inc()
			s.log.Warn("message refused", "subject", m.Subject(), "err", err)
			_ = m.Term() // never valid: do not deliver it again
			return
		}
		s.receive(nil, jsMessage{m: m, topic: topic})
	}, jetstream.PullMaxMessages(1000), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Warn("JetStream consume", "err", err)
	}))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats consume %s/%s: %w", j.Stream, j.Consumer, err)
	}
	s.log.Info("consuming from JetStream", "server", nc.ConnectedUrlRedacted(), "stream", j.Stream, "consumer", j.Consumer)
	return &jsSource{nc: nc, cc: cc}, nil
}

func declare(ctx context.Context, js jetstream.JetStream, j *JetStream) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     j.Stream,
		Subjects: wire.HQStreamSubjects(),
		// A message leaves the stream once HQ has stored it; what no HQ
		// took within a week is dropped (its register still holds it in
		// its outbox and sends it again).
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  j.Replicas,
		MaxAge:    7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", j.Stream, err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, j.Stream, jetstream.ConsumerConfig{
		Durable:       j.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       j.AckWait,
		MaxAckPending: jsPending,
		Replicas:      j.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", j.Consumer, err)
	}
	return c, nil
}

// stop ends the pulling; the messages already handed over are stored and
// acknowledged by ingest before close.
func (js *jsSource) stop() { js.cc.Stop() }

func (js *jsSource) close() { js.nc.Close() }

// jsMessage lets ingest treat a JetStream message like an MQTT one: the
// same topic, payload and acknowledgement after storing.
type jsMessage struct {
	m     jetstream.Msg
	topic string
}

var _ paho.Message = jsMessage{}

func (j jsMessage) Duplicate() bool {
	md, err := j.m.Metadata()
	return err == nil && md.NumDelivered > 1
}
func (j jsMessage) Qos() byte         { return 1 }
func (j jsMessage) Retained() bool    { return false }
func (j jsMessage) Topic() string     { return j.topic }
func (j jsMessage) MessageID() uint16 { return 0 }
func (j jsMessage) Payload() []byte   { return j.m.Data() }

// Ack acknowledges to the stream; a lost ack only means the message comes
// again after AckWait and the store skips it as a duplicate.
func (j jsMessage) Ack() { _ = j.m.Ack() }

// JetStreamServer is the NATS server this instance consumes through ("" when
// it does not use JetStream or is not connected), for logs and tests.
func (s *Service) JetStreamServer() string {
	s.jsMu.Lock()
	defer s.jsMu.Unlock()
	if s.js == nil {
		return ""
	}
	return s.js.nc.ConnectedUrl()
}

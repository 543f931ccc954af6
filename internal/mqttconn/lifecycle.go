package mqttconn

import (
	"cmp"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// RepeatEvery is how often an unchanged connection error is logged again
// while paho keeps retrying: often enough to be seen in a log tail, rarely
// enough not to fill the disk over a weekend outage.
const RepeatEvery = time.Minute

// lifecycle turns paho's connection notifications into log lines: a broker
// that cannot be reached is named with the error at once (or after
// WarnAfter if the attempt just hangs), again when the error changes or
// every RepeatEvery, and the connection that finally comes up is reported.
// paho does all the retrying; this only watches.
type lifecycle struct {
	broker    string // redacted
	log       *slog.Logger
	warnAfter time.Duration
	onLost    func(error)

	mu      sync.Mutex
	up      bool
	since   time.Time // start of the current outage or first connect
	warned  time.Time // last warning in this outage; zero: none yet
	lastErr string
	timer   *time.Timer
}

func newLifecycle(broker string, cl Client) *lifecycle {
	log := cl.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &lifecycle{broker: broker, log: log, warnAfter: cmp.Or(cl.WarnAfter, 3*time.Second), onLost: cl.OnLost}
}

func (l *lifecycle) notify(_ paho.Client, n paho.ConnectionNotification) {
	switch n := n.(type) {
	case paho.ConnectionNotificationConnecting:
		l.connecting()
	case paho.ConnectionNotificationFailed:
		l.failed(n.Reason)
	case paho.ConnectionNotificationConnected:
		l.connected()
	}
}

func (l *lifecycle) connecting() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		l.since = time.Now()
	}
	if l.timer != nil || l.up {
		return
	}
	// A connect to a host that drops packets fails only after
	// ConnectTimeout; say something long before that.
	l.timer = time.AfterFunc(l.warnAfter, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.up && l.warned.IsZero() {
			l.warned = time.Now()
			l.log.Warn("MQTT broker unreachable; retrying", "broker", l.broker, "err", "no connection within "+l.warnAfter.String())
		}
	})
}

func (l *lifecycle) failed(err error) {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.warned.IsZero() && msg == l.lastErr && now.Sub(l.warned) < RepeatEvery {
		return
	}
	l.warned, l.lastErr = now, msg
	if down := now.Sub(l.since).Round(time.Second); down > 0 {
		l.log.Warn("MQTT broker unreachable; retrying", "broker", l.broker, "err", msg, "down", down.String())
		return
	}
	l.log.Warn("MQTT broker unreachable; retrying", "broker", l.broker, "err", msg)
}

func (l *lifecycle) connected() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.warned.IsZero() {
		l.log.Info("connected to MQTT broker", "broker", l.broker)
	} else {
		l.log.Info("connected to MQTT broker", "broker", l.broker, "after", time.Since(l.since).Round(time.Millisecond).String())
	}
	l.up, l.warned, l.lastErr = true, time.Time{}, ""
}

func (l *lifecycle) lost(_ paho.Client, err error) {
	l.mu.Lock()
	l.up, l.since, l.warned, l.lastErr = false, time.Now(), time.Now(), ""
	l.mu.Unlock()
	l.log.Warn("MQTT broker connection lost; reconnecting", "broker", l.broker, "err", err)
	if l.onLost != nil {
		l.onLost(err)
	}
}

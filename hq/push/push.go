// Package push publishes a signed policy bundle to the registers and
// watches their retained status until they report the new version.
package push

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/wire"
)

// PushUsername is the default identity of policy push: an HQ identity
// (wire.IsHQUsername) of its own.
const PushUsername = "hq-push"

// Options describe one push.
type Options struct {
	MQTT     mqttconn.Config
	ClientID string // default: the identity (certificate CN, else MQTT.Username, else PushUsername)
	Scope    string // "all" or a store id
	Bundle   []byte // signed policy bundle
	Version  int64  // the bundle's policy version
	// Expect, when > 0, is how many registers must report Version for the
	// push to count as complete; otherwise every register that has a
	// retained status in the scope is expected.
	Expect int
	// Progress is called whenever a register reports; may be nil.
	Progress func(Report)
}

// Report is the state of a push.
type Report struct {
	Applied  []string          // store/register now on Version
	Pending  []string          // in scope, online, not yet on Version
	Offline  []string          // in scope, offline (will apply when back: the bundle is retained)
	Refused  map[string]string // store/register → why it will not run this version
	Expected int
}

// Done reports whether every expected register applied the version.
func (r Report) Done() bool {
	if r.Expected > 0 {
		return len(r.Applied) >= r.Expected
	}
	return len(r.Applied) > 0 && len(r.Pending) == 0
}

// Run publishes the bundle retained on the scope's policy topic and waits
// until the registers report it, ctx ends (the caller's timeout), or every
// online register has either applied or refused it.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := wire.ValidateScope(o.Scope); err != nil {
		return Report{}, err
	}
	// Its own HQ identity: as "hq" it would take HQ's session over (the
	// broker binds client ids to identities) and be kicked back in turn.
	if o.MQTT.Username == "" && o.MQTT.CertFile == "" {
		o.MQTT.Username = PushUsername
	}
	if o.ClientID == "" {
		id, err := o.MQTT.Identity(PushUsername)
		if err != nil {
			return Report{}, err
		}
		o.ClientID = id
	}
	// A one-shot tool: no session to keep, and no endless retry if the
	// broker is not there.
	opts, err := o.MQTT.Options(mqttconn.Client{ID: o.ClientID, Clean: true, OneShot: true})
	if err != nil {
		return Report{}, err
	}
	w := &watch{o: o, regs: make(map[string]wire.Status), changed: make(chan struct{}, 1)}
	client, err := mqttconn.Connect(ctx, opts)
	if err != nil {
		return Report{}, err
	}
	defer client.Disconnect(250)

	// Learn the fleet first (retained statuses), then publish, so a
	// register's old status is never mistaken for its answer.
	sub := client.Subscribe(wire.Prefix+"/reg/+/+/"+wire.KindStatus, 1, w.onStatus)
	if err := mqttconn.Wait(ctx, sub); err != nil {
		return Report{}, fmt.Errorf("subscribe to register status: %w", err)
	}
	select {
	case <-time.After(500 * time.Millisecond): // retained messages arrive at once
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
	if err := mqttconn.Wait(ctx, client.Publish(wire.PolicyTopic(o.Scope), 1, true, o.Bundle)); err != nil {
		return Report{}, fmt.Errorf("publish policy: %w", err)
	}
	for {
		rep := w.report()
		if o.Progress != nil {
			o.Progress(rep)
		}
		if rep.Done() || (o.Expect == 0 && len(rep.Pending) == 0) {
			return rep, nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return rep, fmt.Errorf("waiting for registers: %w", ctx.Err())
		}
	}
}

type watch struct {
	o       Options
	mu      sync.Mutex
	regs    map[string]wire.Status
	changed chan struct{}
}

func (w *watch) onStatus(_ paho.Client, m paho.Message) {
	st, err := wire.ParseStatus(m.Payload())
	if err != nil {
		return
	}
	if w.o.Scope != wire.ScopeAll && st.Store != w.o.Scope {
		return
	}
	w.mu.Lock()
	w.regs[st.Store+"/"+st.Register] = st
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watch) report() Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	rep := Report{Refused: make(map[string]string), Expected: w.o.Expect}
	for id, st := range w.regs {
		switch state, why := st.Rollout(w.o.Version); state {
		case wire.RolloutRefused:
			rep.Refused[id] = why
		case wire.RolloutApplied:
			rep.Applied = append(rep.Applied, id)
		case wire.RolloutOffline:
			rep.Offline = append(rep.Offline, id)
		default:
			rep.Pending = append(rep.Pending, id)
		}
	}
	sort.Strings(rep.Applied)
	sort.Strings(rep.Pending)
	sort.Strings(rep.Offline)
	return rep
}

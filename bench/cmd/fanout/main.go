// Command fanout measures a policy push to a fleet: an embedded broker
// (hq/broker, with the posguard topic ACL), N registers, each a real agent
// link to HQ (agent/hqsync.Client, with its own MQTT connection, register
// username and agent/state bbolt file), and HQ publishing one signed policy
// bundle. Each register applies it as the agent does: hqsync verifies it
// (bundle.VerifyPolicy: signature, validation, scope, version, expiry),
// stores it (state.SavePolicy, a bbolt transaction with fsync) and hands it
// to OnPolicy, which notes the time. It reports the time from publish to the
// last register having applied it, and to the broker having written it to
// the last register's connection, one line per push in Go benchmark format
// for benchstat:
//
//	BenchmarkPolicyPush/clients=1000 1 <all applied ns> ns/op <all delivered ns> delivered-ns <n> bundle-bytes
//
// The registers are connected, in batches, and have applied one untimed
// warm-up version (which proves every subscription is in place) before the
// timed pushes; each push is a new version, as rollback protection demands.
// All registers share this machine's CPUs and disk: the applied figure
// includes N verifications and N fsyncs queued on them, where real registers
// each do theirs on their own hardware in parallel.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posguard/posguard/agent/hqsync"
	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/wire"
)

func main() {
	clients := flag.Int("clients", 1000, "registers (hqsync clients, each with its own state file) to connect")
	pushes := flag.Int("pushes", 3, "policy pushes to time, each a new version")
	policyFile := flag.String("policy", "../policy/testdata/chain-default.yaml", "policy `FILE` to push")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	p, err := policy.LoadFile(*policyFile)
	if err == nil {
		err = run(ctx, p, *clients, *pushes, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// now is inside the example policy's validity.
var now = time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC)

// round counts one push: registers that applied it, and policy messages
// the broker wrote to register connections.
type round struct {
	want      int64
	applied   atomic.Int64
	delivered atomic.Int64
	mu        sync.Mutex
	lastApply time.Time
	lastSent  time.Time
	done      chan struct{}
}

func newRound(want int) *round { return &round{want: int64(want), done: make(chan struct{})} }

func (r *round) apply(t time.Time) {
	if r.applied.Add(1) == r.want {
		r.mu.Lock()
		r.lastApply = t
		r.mu.Unlock()
		close(r.done)
	}
}

func (r *round) sent(t time.Time) {
	if r.delivered.Add(1) == r.want {
		r.mu.Lock()
		r.lastSent = t
		r.mu.Unlock()
	}
}

// sentHook counts the policy messages the broker writes to clients.
type sentHook struct {
	mqtt.HookBase
	topic string
	cur   atomic.Pointer[round]
}

func (h *sentHook) ID() string { return "fanout-sent" }

func (h *sentHook) Provides(b byte) bool { return b == mqtt.OnPacketSent }

func (h *sentHook) OnPacketSent(_ *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish || pk.TopicName != h.topic {
		return
	}
	if r := h.cur.Load(); r != nil {
		r.sent(time.Now())
	}
}

// register is one agent's link: its state file and hqsync client.
type register struct {
	name   string
	st     *state.Store
	sync   *hqsync.Client
	active atomic.Int64
	done   chan struct{}
}

// fleetID is register i's identity: four registers a store.
func fleetID(i int) string { return fmt.Sprintf("S%04d/R%d", i/4, i%4+1) }

// run connects the registers, times the pushes and writes one benchmark
// line per push to out; progress notes go to logw.
func run(ctx context.Context, p *policy.Policy, nClients, pushes int, out, logw io.Writer) (err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return fmt.Errorf("hq key: %w", err)
	}
	trusted := []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}
	// The broker authenticates every client: one password (one bcrypt
	// hash, made once) for the whole fleet keeps the set-up quick; each
	// connect still costs one bcrypt check, as in production.
	password := rand.Text()
	line, err := broker.HashLine(wire.HQUsername, password)
	if err != nil {
		return err
	}
	hash := strings.TrimPrefix(line, wire.HQUsername+":")
	var file strings.Builder
	file.WriteString(line + "\n")
	for i := range nClients {
		fmt.Fprintf(&file, "%s:%s\n", fleetID(i), hash)
	}
	passwords, err := broker.ParsePasswords([]byte(file.String()))
	if err != nil {
		return err
	}
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", Passwords: passwords})
	if err != nil {
		return err
	}
	defer b.Close()
	topic := wire.PolicyTopic(wire.ScopeAll)
	hook := &sentHook{topic: topic}
	if err := b.Server().AddHook(hook, nil); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var cur atomic.Pointer[round]
	regs := make([]*register, nClients)
	runCtx, stop := context.WithCancel(context.Background())
	// Stop every register (each publishes its offline status and
	// disconnects) before closing its state file and the broker.
	defer func() {
		stop()
		for _, r := range regs {
			if r == nil {
				continue
			}
			if r.done != nil {
				<-r.done
			}
			if cerr := r.st.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()

	start := time.Now()
	const batch = 50 // as a fleet reconnecting after an outage would, not all at once
	for lo := 0; lo < nClients; lo += batch {
		hi := min(lo+batch, nClients)
		for i := lo; i < hi; i++ {
			store, reg, _ := strings.Cut(fleetID(i), "/")
			r := &register{name: store + "/" + reg}
			r.st, err = state.Open(filepath.Join(dir, store+"-"+reg+".db"), state.Options{Store: store, Register: reg})
			if err != nil {
				return fmt.Errorf("register %s: %w", r.name, err)
			}
			regs[i] = r
			r.sync, err = hqsync.New(hqsync.Config{
				MQTT: mqttconn.Config{Broker: b.URL(), Password: password}, Store: store, Register: reg, State: r.st, Trusted: trusted,
				Now:          func() time.Time { return now },
				ActivePolicy: r.active.Load,
				OnPolicy: func(p *policy.Policy) {
					t := time.Now()
					r.active.Store(p.Metadata.Version)
					if rd := cur.Load(); rd != nil {
						rd.apply(t)
					}
				},
				Status: func() wire.Status {
					st := wire.Status{}
					if v := r.active.Load(); v > 0 {
						st.Policy = &wire.PolicyInfo{Name: p.Metadata.Name, Version: v}
					}
					return st
				},
			})
			if err != nil {
				return fmt.Errorf("register %s: %w", r.name, err)
			}
			r.done = make(chan struct{})
			go func() { r.sync.Run(runCtx); close(r.done) }()
		}
		for i := lo; i < hi; i++ {
			for !regs[i].sync.Connected() {
				if ctx.Err() != nil {
					return fmt.Errorf("register %s: not connected before the timeout", regs[i].name)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	fmt.Fprintf(logw, "fanout: %d registers connected in %s\n", nClients, time.Since(start).Round(time.Millisecond))

	hq := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(wire.HQUsername).SetUsername(wire.HQUsername).SetPassword(password))
	if tok := hq.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("hq connect: %v", tok.Error())
	}
	defer hq.Disconnect(0)

	// push publishes version v and waits until every register applied it.
	push := func(v int64) (applied, delivered time.Duration, size int, err error) {
		pv := *p
		pv.Metadata.Version = v
		body, err := bundle.SignPolicy(priv, "EdDSA", "hq1", &pv)
		if err != nil {
			return 0, 0, 0, err
		}
		rd := newRound(nClients)
		cur.Store(rd)
		hook.cur.Store(rd)
		t0 := time.Now()
		if tok := hq.Publish(topic, 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return 0, 0, 0, fmt.Errorf("publish policy v%d: %v", v, tok.Error())
		}
		select {
		case <-rd.done:
		case <-ctx.Done():
			err := fmt.Errorf("push v%d: %d of %d registers applied it (%d delivered) before the timeout",
				v, rd.applied.Load(), nClients, rd.delivered.Load())
			for _, r := range regs {
				if ref := r.sync.Refusal(); ref != nil && ref.Version == v {
					err = errors.Join(err, fmt.Errorf("%s refused v%d: %s %s", r.name, v, ref.Reason, ref.Detail))
				}
			}
			return 0, 0, 0, err
		}
		// The hook counting the last delivery may run just after the
		// apply it caused.
		for wait := time.Now(); rd.delivered.Load() < rd.want && time.Since(wait) < time.Second; {
			time.Sleep(time.Millisecond)
		}
		rd.mu.Lock()
		defer rd.mu.Unlock()
		if rd.lastSent.IsZero() {
			return 0, 0, 0, fmt.Errorf("push v%d: the broker counted %d deliveries for %d registers", v, rd.delivered.Load(), nClients)
		}
		return rd.lastApply.Sub(t0), rd.lastSent.Sub(t0), len(body), nil
	}

	base := p.Metadata.Version
	warm := time.Now()
	if _, _, _, err := push(base); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(logw, "fanout: warm-up v%d applied by all %d registers in %s\n", base, nClients, time.Since(warm).Round(time.Millisecond))
	for i := 1; i <= pushes; i++ {
		applied, delivered, size, err := push(base + int64(i))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "BenchmarkPolicyPush/clients=%d 1 %d ns/op %d delivered-ns %d bundle-bytes\n",
			nClients, applied.Nanoseconds(), delivered.Nanoseconds(), size)
	}
	for _, r := range regs {
		if got := r.active.Load(); got != base+int64(pushes) {
			return fmt.Errorf("register %s runs v%d, want v%d", r.name, got, base+int64(pushes))
		}
		if _, v, err := r.st.ActivePolicy(); err != nil || v != base+int64(pushes) {
			return fmt.Errorf("register %s stored v%d (%v), want v%d", r.name, v, err, base+int64(pushes))
		}
	}
	return nil
}

// Command scale runs a chain-sized fleet against a broker and HQ and
// reports what a register and HQ see: N lightweight register sessions (one
// paho MQTT client each, in this process) connected across the broker, each
// publishing one decision event every -interval for -duration and waiting
// for HQ's ack, plus one policy push to all of them halfway through. Each
// session is persistent and subscribes as a real register does
// (wire.AgentSubscriptions: two QoS 1 filters, the rest QoS 0). Two
// brokers in the same run, so the figures compare:
//
//   - mosquitto: one Mosquitto process; two HQ instances split the events
//     with a shared subscription ($share);
//   - nats: three nats-server processes clustered, with JetStream and the
//     MQTT gateway; registers spread over the nodes (internal/mqttconn),
//     two HQ instances pull the events from one durable JetStream consumer.
//
// HQ stores into a bbolt file (PostgreSQL with -pg URL). Brokers run
// without TLS or passwords here: the figures are the brokers' and HQ's, not
// the handshakes'. One line per broker in Go benchmark format:
//
//	BenchmarkScale/broker=nats/registers=10000 1 <p50 ns> p50-ns <p99 ns> p99-ns <events/s> hq-events/s <ms> push-all-ms <n> lost
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

func main() {
	var o opts
	flag.IntVar(&o.registers, "registers", 10_000, "register sessions to connect")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "each register publishes one event this often")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the registers publish")
	flag.StringVar(&o.brokers, "brokers", "mosquitto,nats", "brokers to run, in this order: mosquitto, nats")
	flag.StringVar(&o.pg, "pg", "", "PostgreSQL URL for HQ's store (default: a bbolt file)")
	flag.StringVar(&natsServer, "nats-server", natsServer, "nats-server `binary` (scripts/bench.sh builds the version go.mod names)")
	flag.Parse()
	if err := runAll(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type opts struct {
	registers          int
	interval, duration time.Duration
	brokers, pg        string
}

func runAll(o opts, out, logw io.Writer) error {
	if o.registers < 1 || o.interval <= 0 || o.duration < o.interval {
		return errors.New("want -registers ≥ 1 and -duration ≥ -interval > 0")
	}
	for b := range strings.SplitSeq(o.brokers, ",") {
		dir, err := os.MkdirTemp("", "scale-")
		if err != nil {
			return err
		}
		var cl *cluster
		switch b {
		case "mosquitto":
			cl, err = startMosquitto(dir, logw)
		case "nats":
			cl, err = startNATS(dir, 3, logw)
		default:
			err = fmt.Errorf("unknown broker %q", b)
		}
		if err == nil {
			err = run(o, b, cl, dir, out, logw)
			cl.stop()
		}
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	return nil
}

// cluster is the broker processes of one run.
type cluster struct {
	mqtt  []string // tcp://host:port of every node
	nats  []string // nats://… (NATS only)
	procs []*exec.Cmd
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		p.Process.Signal(os.Interrupt)
	}
	for _, p := range c.procs {
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func listening(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startProc(c *cluster, logw io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func startMosquitto(dir string, logw io.Writer) (*cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	// As scripts/mosquitto/mosquitto.conf for throughput, without TLS and
	// ACL (see the package comment).
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 100000\nset_tcp_nodelay true\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	bin := "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		bin = "mosquitto"
	}
	c := &cluster{mqtt: []string{fmt.Sprintf("tcp://127.0.0.1:%d", port)}}
	if err := startProc(c, logw, bin, "-c", conf); err != nil {
		return nil, err
	}
	return c, listening(fmt.Sprintf("127.0.0.1:%d", port))
}

// natsServer is the nats-server binary (-nats-server).
var natsServer = "nats-server"

func startNATS(dir string, n int, logw io.Writer) (*cluster, error) {
	type ports struct{ client, route, mqtt int }
	var ps []ports
	for range n {
		var p ports
		var err error
		for _, x := range []*int{&p.client, &p.route, &p.mqtt} {
			if *x, err = freePort(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, p)
	}
	c := &cluster{}
	for i, p := range ps {
		var routes []string
		for j, q := range ps {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", q.route))
			}
		}
		// As scripts/nats/gen-cluster.sh writes a node, without TLS and
		// users (see the package comment).
		text := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster { name: posguard, listen: 127.0.0.1:%d, routes: [%s] }
mqtt { listen: 127.0.0.1:%d, stream_replicas: %d, consumer_replicas: %d, max_ack_pending: 1000 }
`, i+1, p.client, filepath.Join(dir, fmt.Sprintf("js%d", i+1)), p.route, strings.Join(routes, ", "), p.mqtt, min(n, 3), min(n, 3))
		conf := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		if err := startProc(c, logw, natsServer, "-c", conf); err != nil {
			return nil, err
		}
		c.mqtt = append(c.mqtt, fmt.Sprintf("tcp://127.0.0.1:%d", p.mqtt))
		c.nats = append(c.nats, fmt.Sprintf("nats://127.0.0.1:%d", p.client))
	}
	for _, p := range ps {
		if err := listening(fmt.Sprintf("127.0.0.1:%d", p.mqtt)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// reg is one simulated register.
type reg struct {
	store, id string
	c         paho.Client
	mu        sync.Mutex
	sent      map[string]time.Time // event id → first publish, until acked
	seq       uint64
}

// fleetID is register i's store and register: three registers a store.
func fleetID(i int) (string, string) { return fmt.Sprintf("S%05d", i/3), fmt.Sprintf("R%d", i%3+1) }

type stats struct {
	mu        sync.Mutex
	latencies []time.Duration
	published atomic.Int64
	acked     atomic.Int64
	policy    atomic.Int64 // registers that got the pushed policy
	pushAll   chan struct{}
	want      int64
}

func run(o opts, name string, cl *cluster, dir string, out, logw io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st store.Store
	var err error
	if o.pg != "" {
		st, err = store.OpenPostgres(ctx, o.pg)
	} else {
		st, err = store.OpenBolt(filepath.Join(dir, "hq.db"))
	}
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var hqs []*hq.Service
	var wg sync.WaitGroup
	for _, id := range []string{"hq-a", "hq-b"} {
		cfg := hq.Config{MQTT: mqttconn.Config{Broker: strings.Join(cl.mqtt, ","), MaxReconnect: time.Second},
			ClientID: id, Store: st, Logger: log}
		if cl.nats != nil {
			cfg.JetStream = &hq.JetStream{URLs: strings.Join(cl.nats, ","), Replicas: min(len(cl.nats), 3)}
		} else {
			cfg.ShareGroup = "ingest"
		}
		svc, err := hq.New(cfg)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); svc.Run(ctx) }()
		select {
		case <-svc.Ready():
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("%s not ready", id)
		}
		hqs = append(hqs, svc)
	}
	defer wg.Wait()
	defer cancel()

	s := &stats{pushAll: make(chan struct{}), want: int64(o.registers)}
	regs := make([]*reg, o.registers)
	start := time.Now()
	// Connect in waves, as a fleet coming back after an outage would.
	sem := make(chan struct{}, 100)
	var cerr atomic.Pointer[error]
	var cwg sync.WaitGroup
	for i := range regs {
		sem <- struct{}{}
		cwg.Add(1)
		go func() {
			defer func() { <-sem; cwg.Done() }()
			r, err := connect(cl, i, s)
			if err != nil {
				cerr.CompareAndSwap(nil, &err)
				return
			}
			regs[i] = r
		}()
		if (i+1)%1000 == 0 {
			fmt.Fprintf(logw, "%s: %d registers connected (%.0fs)\n", name, i+1, time.Since(start).Seconds())
		}
	}
	cwg.Wait()
	if e := cerr.Load(); e != nil {
		return *e
	}
	fmt.Fprintf(logw, "%s: %d registers connected in %.1fs; publishing for %v\n", name, len(regs), time.Since(start).Seconds(), o.duration)
	defer func() {
		for _, r := range regs {
			r.c.Disconnect(0)
		}
	}()

	// Each register publishes every interval from a random offset.
	loadStart := time.Now()
	stop := make(chan struct{})
	var lwg sync.WaitGroup
	for _, r := range regs {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			t := time.NewTimer(rand.N(o.interval))
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					r.publish(s)
					t.Reset(o.interval)
				}
			}
		}()
	}
	time.Sleep(o.duration / 2)
	pusher := paho.NewClient(paho.NewClientOptions().AddBroker(cl.mqtt[0]).SetClientID("hq-push"))
	if tok := pusher.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return fmt.Errorf("hq-push: %v", tok.Error())
	}
	pushAt := time.Now()
	if tok := pusher.Publish(wire.PolicyTopic(wire.ScopeAll), 1, true, []byte("policy v2")); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return fmt.Errorf("push: %v", tok.Error())
	}
	var pushAll time.Duration
	select {
	case <-s.pushAll:
		pushAll = time.Since(pushAt)
	case <-time.After(o.duration):
		fmt.Fprintf(logw, "%s: push reached %d of %d registers\n", name, s.policy.Load(), o.registers)
	}
	pusher.Disconnect(100)
	time.Sleep(time.Until(loadStart.Add(o.duration)))
	close(stop)
	lwg.Wait()
	loadTime := time.Since(loadStart)
	// Wait for the last acks.
	deadline := time.Now().Add(time.Minute)
	for s.acked.Load() < s.published.Load() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	lost := s.published.Load() - s.acked.Load()
	stored, err := st.Events(context.Background(), store.Query{Limit: 1})
	_ = stored
	if err != nil {
		return err
	}
	s.mu.Lock()
	lat := slices.Clone(s.latencies)
	s.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rate := float64(s.acked.Load()) / loadTime.Seconds()
	fmt.Fprintf(out, "BenchmarkScale/broker=%s/registers=%d 1 %d p50-ns %d p99-ns %.0f hq-events/s %d push-all-ms %d lost\n",
		name, o.registers, pct(0.50), pct(0.99), rate, pushAll.Milliseconds(), lost)
	return nil
}

func connect(cl *cluster, i int, s *stats) (*reg, error) {
	storeID, id := fleetID(i)
	r := &reg{store: storeID, id: id, sent: map[string]time.Time{}}
	cfg := mqttconn.Config{Broker: strings.Join(cl.mqtt, ","), MaxReconnect: 2 * time.Second}
	o, err := cfg.Options(mqttconn.Client{ID: wire.Username(storeID, id), OneShot: true, KeepAlive: time.Minute})
	if err != nil {
		return nil, err
	}
	var got sync.Once
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if m.Topic() == wire.PolicyTopic(wire.ScopeAll) {
			got.Do(func() {
				if s.policy.Add(1) == s.want {
					close(s.pushAll)
				}
			})
			return
		}
		a, err := wire.ParseAck(m.Payload())
		if err != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		var lats []time.Duration
		for _, id := range a.IDs {
			if t, ok := r.sent[id]; ok {
				lats = append(lats, now.Sub(t))
				delete(r.sent, id)
			}
		}
		r.mu.Unlock()
		s.acked.Add(int64(len(lats)))
		s.mu.Lock()
		s.latencies = append(s.latencies, lats...)
		s.mu.Unlock()
	})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return nil, fmt.Errorf("register %d connect: %v", i, cmp.Or(tok.Error(), errors.New("timeout")))
	}
	r.c = c
	// What a real register subscribes to, at the QoS it asks for each.
	tok := c.SubscribeMultiple(wire.AgentSubscriptions(storeID, id), nil)
	if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		return nil, fmt.Errorf("register %d subscribe: %v", i, tok.Error())
	}
	return r, nil
}

var at0 = time.Date(2026, 7, 4, 10, 0, 0, 0, time.UTC)

func (r *reg) publish(s *stats) {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	when := at0.Add(time.Duration(seq) * time.Second)
	sale := "sale-" + strconv.FormatUint(seq, 10)
	ev := event.Event{ID: event.ID(r.store, r.id, "scale", seq), Seq: seq, Type: event.Decision, Store: r.store, Register: r.id,
		At: when, SaleID: sale,
		Request:  &policy.Request{SaleID: sale, Store: r.store, Register: r.id, At: when, Payment: policy.Payment{Kind: "pg1", Account: "acct-" + r.store}},
		Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "chain-default", Version: 1}}}
	b, err := event.Marshal(ev)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.sent[ev.ID] = time.Now()
	r.mu.Unlock()
	s.published.Add(1)
	r.c.Publish(wire.EventsTopic(r.store, r.id), 1, false, b)
}

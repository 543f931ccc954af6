// Command fanout measures a policy push to a fleet: an embedded broker
// (hq/broker, with the posguard topic ACL), N register clients (paho, each
// with its own connection and register username) subscribed to the policy
// topic, and HQ publishing one signed policy bundle. Each client verifies
// the bundle (bundle.VerifyPolicy: signature, validation, scope, version,
// expiry) as an agent does before applying it. It reports the time from
// publish to the last client receiving it and to the last client having
// verified it, one line per push in Go benchmark format for benchstat:
//
//	BenchmarkPolicyPush/clients=1000 1 <all verified ns> ns/op <all received ns> received-ns
//
// All clients share this machine's CPUs: arrivals are verified by one
// worker per CPU, so the verified figure includes N verifications queued on
// them, where on real registers each verifies on its own CPU in parallel.
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posguard/posguard/agent/wire"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
)

func main() {
	clients := flag.Int("clients", 1000, "register clients to connect")
	pushes := flag.Int("pushes", 3, "policy pushes to time, each a new version")
	policyFile := flag.String("policy", "../policy/testdata/chain-default.yaml", "policy `FILE` to push")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
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

type fleet struct {
	mu       sync.Mutex
	received atomic.Int64
	verified atomic.Int64
	failed   atomic.Int64
	lastRecv time.Time
	lastOK   time.Time
	done     chan struct{}
	want     int64
}

// run connects the clients, times the pushes and writes one benchmark
// line per push to out; progress notes go to logw.
func run(ctx context.Context, p *policy.Policy, nClients, pushes int, out, logw io.Writer) error {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return fmt.Errorf("hq key: %w", err)
	}
	trusted := []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer b.Close()

	topic := wire.PolicyTopic(wire.ScopeAll)
	f := &fleet{want: int64(nClients)} // want never changes: handlers read it unlocked
	// Handlers only note the arrival; a pool of one worker per CPU verifies,
	// so the received figure is the broker's delivery, not a queue of
	// 1,000 verifications fighting for two cores.
	type job struct {
		store   string
		mine    *atomic.Int64
		payload []byte
	}
	jobs := make(chan job, nClients)
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for j := range jobs {
				np, err := bundle.VerifyPolicy(j.payload, trusted, j.store, j.mine.Load(), now)
				if err != nil {
					f.failed.Add(1)
					fmt.Fprintln(logw, "fanout: client refused the policy:", err)
					continue
				}
				j.mine.Store(np.Metadata.Version)
				if f.verified.Add(1) == f.want {
					f.mu.Lock()
					f.lastOK = time.Now()
					close(f.done)
					f.mu.Unlock()
				}
			}
		}()
	}
	defer close(jobs)
	handler := func(store string) paho.MessageHandler {
		mine := new(atomic.Int64)
		return func(_ paho.Client, m paho.Message) {
			t := time.Now()
			if f.received.Add(1) == f.want {
				f.mu.Lock()
				f.lastRecv = t
				f.mu.Unlock()
			}
			jobs <- job{store: store, mine: mine, payload: m.Payload()}
		}
	}

	conns := make([]paho.Client, nClients)
	sem := make(chan struct{}, 50) // connect 50 at a time, as a fleet reconnecting after an outage would not all at once
	var wg sync.WaitGroup
	var connErr atomic.Value
	start := time.Now()
	for i := range conns {
		store, reg := fmt.Sprintf("S%04d", i/4), fmt.Sprintf("R%d", i%4+1)
		opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(store + "-" + reg).SetUsername(store + "/" + reg).
			SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false)
		c := paho.NewClient(opts)
		conns[i] = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				connErr.Store(fmt.Errorf("connect %s/%s: %v", store, reg, tok.Error()))
				return
			}
			if tok := c.Subscribe(topic, 1, handler(store)); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				connErr.Store(fmt.Errorf("subscribe %s/%s: %v", store, reg, tok.Error()))
			}
		}()
	}
	wg.Wait()
	if err, _ := connErr.Load().(error); err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Disconnect(0)
		}
	}()
	fmt.Fprintf(logw, "fanout: %d clients connected and subscribed in %s\n", nClients, time.Since(start).Round(time.Millisecond))

	hq := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("hq").SetUsername(wire.HQUsername))
	if tok := hq.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("hq connect: %v", tok.Error())
	}
	defer hq.Disconnect(0)

	for push := 1; push <= pushes; push++ {
		v := *p
		v.Metadata.Version = p.Metadata.Version + int64(push) - 1
		body, err := bundle.SignPolicy(priv, "EdDSA", "hq1", &v)
		if err != nil {
			return err
		}
		f.received.Store(0)
		f.verified.Store(0)
		done := make(chan struct{})
		f.mu.Lock()
		f.done = done
		f.mu.Unlock()
		t0 := time.Now()
		if tok := hq.Publish(topic, 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publish policy v%d: %v", v.Metadata.Version, tok.Error())
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("push v%d: only %d of %d clients received and %d verified (%d refused) before the timeout",
				v.Metadata.Version, f.received.Load(), nClients, f.verified.Load(), f.failed.Load())
		}
		f.mu.Lock()
		recv, ok := f.lastRecv.Sub(t0), f.lastOK.Sub(t0)
		f.mu.Unlock()
		fmt.Fprintf(out, "BenchmarkPolicyPush/clients=%d 1 %d ns/op %d received-ns %d bundle-bytes\n", nClients, ok.Nanoseconds(), recv.Nanoseconds(), len(body))
		if f.failed.Load() > 0 {
			return fmt.Errorf("push v%d: %d clients refused the policy", v.Metadata.Version, f.failed.Load())
		}
	}
	return nil
}

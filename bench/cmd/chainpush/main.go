// Command chainpush measures HQ's second line end to end: from the event
// that trips a chain rule to the automatic denylist entry applied at every
// register of a fleet. An embedded broker (hq/broker, with the posguard
// topic ACL and password authentication), an hq.Service with one chain rule
// (account_stores, minStores 2, action denylist) over a bbolt store (or
// PostgreSQL with -db), and N registers, each a lightweight MQTT client with
// its own register identity that receives the signed denylist delta,
// verifies it (bundle.VerifyDelta: signature and validation) and notes when
// the account arrived. One round: an account pays at one store (untimed,
// until HQ acked it), then at a second store; timed from that publish until
// the last register applied the entry. One line per round in Go benchmark
// format for benchstat:
//
//	BenchmarkChainDenylist/clients=1000 1 <all applied ns> ns/op
//
// All registers share this machine's CPUs: the figure includes N signature
// checks queued on them, where real registers each do theirs on their own
// hardware. Registers that apply the delta to bbolt (hqsync, fsync) are
// what bench/cmd/fanout measures for a policy push.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
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

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/sale"
	"github.com/posguard/posguard/wire"
)

func main() {
	clients := flag.Int("clients", 1000, "registers (MQTT clients applying the denylist delta) to connect")
	rounds := flag.Int("rounds", 3, "accounts tripping the rule, one timed round each")
	db := flag.String("db", "", "PostgreSQL URL for HQ's store (default: a bbolt file in a temporary directory)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *clients, *rounds, *db, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chainpush:", err)
		os.Exit(1)
	}
}

const rules = `apiVersion: posguard/v1
kind: ChainRules
metadata: {name: chainpush}
rules:
  - {id: hop, kind: account_stores, minStores: 2, window: 30m, actions: [denylist], denylistFor: 1h}
`

func fleetID(i int) string { return fmt.Sprintf("S%04d/R%d", i/4, i%4+1) }

// round waits for one account at every register.
type round struct {
	account string
	want    int64
	applied atomic.Int64
	mu      sync.Mutex
	last    time.Time
	done    chan struct{}
}

func (r *round) apply(t time.Time) {
	r.mu.Lock()
	if t.After(r.last) {
		r.last = t
	}
	r.mu.Unlock()
	if r.applied.Add(1) == r.want {
		close(r.done)
	}
}

func run(ctx context.Context, n, rounds int, db string, out, logw io.Writer) error {
	if n < 8 {
		return fmt.Errorf("-clients %d: at least 8 (two stores pay)", n)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	trusted := []bundle.TrustedKey{{KID: "hq1", Alg: "EdDSA", Public: pub}}
	password := rand.Text()
	line, err := broker.HashLine(wire.HQUsername, password)
	if err != nil {
		return err
	}
	hash := strings.TrimPrefix(line, wire.HQUsername+":")
	var file strings.Builder
	file.WriteString(line + "\n")
	for i := range n {
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

	var st store.Store
	if db != "" {
		st, err = store.OpenPostgres(ctx, db)
	} else {
		dir, derr := os.MkdirTemp("", "chainpush-")
		if derr != nil {
			return derr
		}
		defer os.RemoveAll(dir)
		st, err = store.OpenBolt(filepath.Join(dir, "hq.db"))
	}
	if err != nil {
		return err
	}
	defer st.Close()
	doc, err := chain.Load([]byte(rules))
	if err != nil {
		return err
	}
	svc, err := hq.New(hq.Config{MQTT: mqttconn.Config{Broker: b.URL(), Username: wire.HQUsername, Password: password}, Store: st,
		Signer: priv, SignerAlg: "EdDSA", SignerKID: "hq1", Chain: hq.ChainConfig{Rules: doc}})
	if err != nil {
		return err
	}
	hqCtx, stopHQ := context.WithCancel(context.Background())
	hqDone := make(chan struct{})
	go func() { svc.Run(hqCtx); close(hqDone) }()
	defer func() { stopHQ(); <-hqDone }()
	select {
	case <-svc.Ready():
	case <-ctx.Done():
		return fmt.Errorf("HQ did not connect")
	}

	var cur atomic.Pointer[round]
	regs := make([]paho.Client, n)
	defer func() {
		for _, c := range regs {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}()
	var refused atomic.Int64
	start := time.Now()
	for i := range n {
		id := fleetID(i)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetUsername(id).SetPassword(password).
			SetCleanSession(true).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			return fmt.Errorf("register %s connect: %v", id, tok.Error())
		}
		regs[i] = c
		tok := c.Subscribe(wire.DenylistDelta, 1, func(_ paho.Client, m paho.Message) {
			t := time.Now()
			d, err := bundle.VerifyDelta(m.Payload(), trusted)
			if err != nil {
				refused.Add(1)
				return
			}
			if rd := cur.Load(); rd != nil {
				for _, a := range d.Add {
					if a == rd.account && d.Details[a].Rule == "hop" {
						rd.apply(t)
					}
				}
			}
		})
		if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			return fmt.Errorf("register %s subscribe: %v", id, tok.Error())
		}
	}
	fmt.Fprintf(logw, "chainpush: %d registers connected in %s\n", n, time.Since(start).Round(time.Millisecond))

	// Registers 0 and 4 are at two stores; they pay and hear their acks.
	acks := make(chan string, 16)
	for _, i := range []int{0, 4} {
		s, r, _ := strings.Cut(fleetID(i), "/")
		if tok := regs[i].Subscribe(wire.AckTopic(s, r), 1, func(_ paho.Client, m paho.Message) {
			if a, err := wire.ParseAck(m.Payload()); err == nil {
				for _, id := range a.IDs {
					acks <- id
				}
			}
		}); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			return fmt.Errorf("subscribe acks: %v", tok.Error())
		}
	}
	at := time.Now().UTC().Truncate(time.Second)
	payAt := func(i int, seq uint64, account string) (string, error) {
		s, r, _ := strings.Cut(fleetID(i), "/")
		sid := fmt.Sprint("sale-", seq)
		ev := event.Event{ID: event.ID(s, r, "chainpush", seq), Seq: seq, Type: event.Decision, Store: s, Register: r, At: at, SaleID: sid,
			Request: &sale.Request{SaleID: sid, Store: s, Register: r, At: at,
				Lines:   []sale.Line{{JAN: "4901234000100", Category: "tobacco-carton", Quantity: 1, UnitPrice: 6000}},
				Payment: sale.Payment{Kind: "pg1", Account: account}},
			Decision: &sale.Decision{Outcome: sale.Allow, Policy: sale.PolicyRef{Name: "p", Version: 1}}}
		body, err := json.Marshal(ev)
		if err != nil {
			return "", err
		}
		if tok := regs[i].Publish(wire.EventsTopic(s, r), 1, false, body); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			return "", fmt.Errorf("publish: %v", tok.Error())
		}
		return ev.ID, nil
	}
	for k := 1; k <= rounds; k++ {
		acct := fmt.Sprintf("acct-crew-%d-%s", k, rand.Text()[:6])
		id, err := payAt(0, uint64(k), acct)
		if err != nil {
			return err
		}
		for got := ""; got != id; {
			select {
			case got = <-acks:
			case <-ctx.Done():
				return fmt.Errorf("round %d: first sale not acked", k)
			}
		}
		rd := &round{account: acct, want: int64(n), done: make(chan struct{})}
		cur.Store(rd)
		t0 := time.Now()
		if _, err := payAt(4, uint64(k), acct); err != nil {
			return err
		}
		select {
		case <-rd.done:
		case <-ctx.Done():
			return fmt.Errorf("round %d: %d of %d registers applied the entry before the timeout (%d deltas refused)", k, rd.applied.Load(), n, refused.Load())
		}
		rd.mu.Lock()
		d := rd.last.Sub(t0)
		rd.mu.Unlock()
		fmt.Fprintf(out, "BenchmarkChainDenylist/clients=%d 1 %d ns/op\n", n, d.Nanoseconds())
	}
	if r := refused.Load(); r > 0 {
		return fmt.Errorf("%d deltas refused by registers", r)
	}
	return nil
}

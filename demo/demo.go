// Package demo runs posguard on one machine: an embedded MQTT broker, HQ
// with a bbolt store and chain rules, two stores each with its display and
// register agents whose scanners and POS ports are pseudo-terminals, then
// replays the 7pay attack of July 2019 through the real scanner → agent →
// POS path and prints each decision as it is made.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/agent/config"
	"github.com/posguard/posguard/display"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/sim"
	"github.com/posguard/posguard/hq"
	"github.com/posguard/posguard/hq/broker"
	"github.com/posguard/posguard/hq/chain"
	"github.com/posguard/posguard/hq/push"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/httpserve"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/bundle"
	"github.com/posguard/posguard/policy/token"
	"github.com/posguard/posguard/wire"
)

// Options configure a demo run.
type Options struct {
	Out io.Writer    // the live table and summary
	Log *slog.Logger // component logs; nil discards them
	// Speed compresses scenario time: a scenario minute between two
	// customers takes a minute/Speed of real time. 0 means no pauses.
	Speed float64
	// Keep leaves everything running after the summary until ctx ends,
	// for a look at the display.
	Keep bool
	// Dir holds the state files and keys; empty means a temporary
	// directory removed at the end.
	Dir string
	// DisplayListen is the display's address (default 127.0.0.1:0).
	DisplayListen string
}

// Summary is what the demo ends with.
type Summary struct {
	Sales, Allowed, Reviewed, Denied int
	YenDenied, YenHeld               int64
	FraudStopped, Fraud              int // fraud sales reviewed or denied, of all fraud sales
	LegitTouched, Legit              int // legitimate sales reviewed or denied, of all legitimate sales
	Resolved                         int // reviews resolved by a manager at the display
}

const (
	storeID   = "s1" // where the scenario starts
	store2    = "s2" // the next street, where the crew moves
	walletISS = "posguard-wallet-demo"
	walletKID = "demo-wallet-1"
	hqKID     = "hq-demo"
	// demoPIN is the managers' PIN on both registers, printed with the
	// display's address so a visitor can resolve a review.
	demoPIN = "1234"
)

// tills are the demo's registers: two at the first store, one at the
// second.
var tills = []struct{ store, id string }{{storeID, "r1"}, {storeID, "r2"}, {store2, "r1"}}

// stores are the demo's stores, each with its display.
var stores = []string{storeID, store2}

// tillKey names a register across stores ("s1/r1"), as the table prints it.
func tillKey(store, id string) string { return store + "/" + id }

type register struct {
	store     string
	id        string
	scanner   *sim.Sim
	pos       *sim.POS
	agent     *agent.Agent
	decisions chan event.Event
}

type rig struct {
	o       Options
	log     *slog.Logger
	dir     string
	now     func() time.Time
	hqKey   ed25519.PrivateKey
	wallet  ed25519.PrivateKey
	policy  *policy.Policy
	broker  *broker.Broker
	creds   *credentials
	hq      *hq.Service
	hqStore store.Store
	regs    map[string]*register // by tillKey
	wg      sync.WaitGroup
	errs    chan error
	urls    []string
	// displayURLs are each store display's base URL.
	displayURLs map[string]string
}

// Run starts everything, plays the scenario and returns its summary.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DisplayListen == "" {
		o.DisplayListen = "127.0.0.1:0"
	}
	r := &rig{o: o, log: o.Log, now: time.Now, regs: map[string]*register{}, displayURLs: map[string]string{}, errs: make(chan error, 16)}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "posguard-demo-")
		if err != nil {
			return Summary{}, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	r.dir = o.Dir
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); r.wg.Wait() }()

	fmt.Fprintln(o.Out, "posguard demo: the 7pay attack of July 2019, replayed at two stores of a chain (s1: two registers, s2: one)")
	if err := r.start(ctx); err != nil {
		return Summary{}, err
	}
	for _, u := range r.urls {
		fmt.Fprintln(o.Out, "  "+u)
	}
	sum, err := r.play(ctx)
	if err != nil {
		return sum, err
	}
	r.printSummary(ctx, sum)
	if o.Keep {
		fmt.Fprintf(o.Out, "\n--keep: everything stays up. Open the store display above; the manager PIN is %s\n"+
			"(approve or reject the open review with it). Ctrl-C to stop.\n", demoPIN)
		<-ctx.Done()
	}
	return sum, nil
}

func (r *rig) goRun(name string, f func(context.Context) error, ctx context.Context) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			r.errs <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

func (r *rig) start(ctx context.Context) error {
	var err error
	if _, r.hqKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return err
	}
	if _, r.wallet, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return err
	}
	if err := r.makePolicy(); err != nil {
		return err
	}
	creds, table, err := newCredentials(r.dir)
	if err != nil {
		return err
	}
	r.creds = creds
	if r.broker, err = broker.Start(broker.Options{Passwords: table, Logger: r.log}); err != nil {
		return err
	}
	go func() { <-ctx.Done(); r.broker.Close() }()
	r.urls = append(r.urls, "MQTT broker (embedded):  "+r.broker.URL())

	if err := r.startHQ(ctx); err != nil {
		return err
	}
	for i, st := range stores {
		listen := "127.0.0.1:0"
		if i == 0 {
			listen = r.o.DisplayListen
		}
		if err := r.startDisplay(ctx, st, listen); err != nil {
			return err
		}
	}
	if err := r.watchEvents(); err != nil {
		return err
	}
	for _, t := range tills {
		if err := r.startRegister(ctx, tillKey(t.store, t.id)); err != nil {
			return err
		}
	}
	// HQ signs the example policy and pushes it; wait for every register.
	signed, err := bundle.SignPolicy(r.hqKey, bundle.AlgEdDSA, hqKID, r.policy)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := push.Run(pctx, push.Options{MQTT: r.creds.mqtt(r.broker.URL(), push.PushUsername), Scope: "all",
		Bundle: signed, Version: r.policy.Metadata.Version, Expect: len(r.regs)})
	if err != nil {
		return fmt.Errorf("push the policy: %w (%+v)", err, rep)
	}
	fmt.Fprintf(r.o.Out, "HQ pushed signed policy %s v%d; applied by %s\n\n", r.policy.Metadata.Name,
		r.policy.Metadata.Version, strings.Join(rep.Applied, ", "))
	return nil
}

// makePolicy takes the example policy and makes it this run's: valid from
// now, and trusting this run's wallet key.
func (r *rig) makePolicy() error {
	p, err := policy.Load(policy.Example())
	if err != nil {
		return fmt.Errorf("example policy: %w", err)
	}
	now := r.now().UTC().Truncate(time.Second)
	p.Metadata.IssuedAt, p.Metadata.ExpiresAt = now.Add(-time.Minute), now.Add(30*24*time.Hour)
	// A fresh number above any earlier run's, and no higher than the issue
	// time in Unix seconds, as registers require.
	p.Metadata.Version = p.Metadata.IssuedAt.Unix()
	pemText, err := token.PublicKeyPEM(r.wallet.Public())
	if err != nil {
		return err
	}
	p.Tokens.Issuers = []policy.Issuer{{Name: walletISS, Keys: []policy.IssuerKey{
		{KID: walletKID, Alg: "EdDSA", PublicKey: pemText, Public: r.wallet.Public()}}}}
	// Round-trip through the loader so what runs is exactly what a
	// register would load from the signed bundle.
	canon, err := p.Canonical()
	if err != nil {
		return err
	}
	if r.policy, err = policy.Load(canon); err != nil {
		return fmt.Errorf("demo policy: %w", err)
	}
	return nil
}

func (r *rig) startHQ(ctx context.Context) error {
	var err error
	if r.hqStore, err = store.OpenBolt(filepath.Join(r.dir, "hq.db")); err != nil {
		return err
	}
	go func() { <-ctx.Done(); r.wg.Wait(); r.hqStore.Close() }()
	rules, err := chain.Load([]byte(chainRules))
	if err != nil {
		return fmt.Errorf("demo chain rules: %w", err)
	}
	r.hq, err = hq.New(hq.Config{MQTT: r.hqMQTT(), Chain: hq.ChainConfig{Rules: rules},
		Store: r.hqStore, Signer: r.hqKey, SignerAlg: bundle.AlgEdDSA, SignerKID: hqKID, Logger: r.log})
	if err != nil {
		return err
	}
	r.goRun("hq", r.hq.Run, ctx)
	select {
	case <-r.hq.Ready():
	case <-time.After(10 * time.Second):
		return errors.New("HQ did not connect to the broker")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv, lim := httpserve.Server(ln, r.hq.Handler(), hq.APILimits(), r.log)
	go srv.Serve(lim)
	go func() { <-ctx.Done(); srv.Close() }()
	api := "http://" + ln.Addr().String()
	r.urls = append(r.urls, "HQ API (fleet, alerts):  "+api+"/v1/fleet  "+api+"/v1/alerts",
		"HQ chain rules:          "+api+"/v1/chain/rules  (crew-hopping: account_stores, 2 stores in 30 min, enforce)")
	return nil
}

// chainRules are HQ's chain rules in the demo: an account paying at a
// second store within half an hour is a crew hopping stores, denylisted at
// every register of the chain for a day.
const chainRules = `apiVersion: posguard/v1
kind: ChainRules
metadata:
  name: demo-chain
  description: the 2019 crew's store hopping, seen from HQ
rules:
  - id: crew-hopping
    kind: account_stores
    description: one account paying at two stores within half an hour
    minStores: 2
    window: 30m
    mode: enforce
    actions: [alert, denylist]
    denylistFor: 24h
`

func (r *rig) hqMQTT() mqttconn.Config {
	c := r.creds.mqtt(r.broker.URL(), wire.HQUsername)
	c.MaxReconnect = time.Second
	return c
}

func (r *rig) startDisplay(ctx context.Context, st, listen string) error {
	d, err := display.New(display.Config{Store: st, MQTT: mqttconn.Config{Broker: r.broker.URL(), Password: r.creds.passwords[wire.DisplayUsername(st)]}, Listen: listen,
		ReviewTimeout: 10 * time.Minute, StateFile: filepath.Join(r.dir, "display-"+st+".json"), Log: r.log})
	if err != nil {
		return err
	}
	addr := make(chan string, 1)
	r.goRun("display "+st, func(ctx context.Context) error { return d.Run(ctx, func(a string) { addr <- a }) }, ctx)
	select {
	case a := <-addr:
		r.displayURLs[st] = "http://" + a
		r.urls = append(r.urls, fmt.Sprintf("store display %s:        %s/  (manager PIN %s)", st, r.displayURLs[st], demoPIN))
	case err := <-r.errs:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("display did not start")
	}
	return nil
}

// watchEvents hands each register's decision events, as HQ receives them
// over MQTT, to the scenario player.
func (r *rig) watchEvents() error {
	for _, t := range tills {
		r.regs[tillKey(t.store, t.id)] = &register{store: t.store, id: t.id, decisions: make(chan event.Event, 64)}
	}
	return r.broker.Server().Subscribe("posguard/v1/reg/+/+/events", 1,
		func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			ev, err := event.Parse(pk.Payload)
			if err != nil || ev.Type != event.Decision {
				return
			}
			if reg := r.regs[tillKey(ev.Store, ev.Register)]; reg != nil {
				reg.decisions <- ev
			}
		})
}

func (r *rig) startRegister(ctx context.Context, id string) error {
	reg := r.regs[id]
	file := reg.store + "-" + reg.id // a name for this register's files
	var err error
	cr := line.Framing{Suffix: line.Bytes("\r")}
	if reg.scanner, err = sim.New(sim.Options{Mode: sim.ModeLine, Framing: cr, Link: filepath.Join(r.dir, "scanner-"+file), Log: r.log}); err != nil {
		return fmt.Errorf("register %s scanner: %w", id, err)
	}
	if reg.pos, err = sim.NewPOS(filepath.Join(r.dir, "pos-"+file)); err != nil {
		return fmt.Errorf("register %s POS: %w", id, err)
	}
	go func() { <-ctx.Done(); reg.scanner.Close(); reg.pos.Close() }()
	cfgPath, err := r.writeAgentConfig(reg)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if reg.agent, err = agent.New(cfg, agent.Options{Logger: r.log, Version: "demo"}); err != nil {
		return err
	}
	r.goRun("agent "+id, reg.agent.Run, ctx)
	select {
	case <-reg.agent.Ready():
	case err := <-r.errs:
		return err
	case <-time.After(15 * time.Second):
		return fmt.Errorf("register %s did not start", id)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := reg.scanner.WaitConnected(wctx); err != nil {
		return fmt.Errorf("register %s: agent never opened the scanner: %w", id, err)
	}
	r.urls = append(r.urls, fmt.Sprintf("register %s: scanner %s  POS %s  API http://%s/v1/status", id,
		reg.scanner.Path(), reg.pos.Path(), reg.agent.Addr()))
	return nil
}

// writeAgentConfig writes the register's agent.yaml, the same file a real
// register reads, with the keys it names.
func (r *rig) writeAgentConfig(reg *register) (string, error) {
	hqPub, err := token.PublicKeyPEM(r.hqKey.Public())
	if err != nil {
		return "", err
	}
	pubPath := filepath.Join(r.dir, hqKID+".pub.pem")
	if err := os.WriteFile(pubPath, []byte(hqPub), 0o644); err != nil {
		return "", err
	}
	acctPath := filepath.Join(r.dir, "account.key")
	if _, err := os.Stat(acctPath); err != nil {
		secret := make([]byte, 32)
		rand.Read(secret)
		if err := os.WriteFile(acctPath, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	pin, err := bcrypt.GenerateFromPassword([]byte(demoPIN), config.MinPINCost)
	if err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`# written by posguard demo
store: %s
register: %s
state: %s
scanner:
  port: %s
  mode: line
  suffix: CR
pos:
  port: %s
  suffix: CR
policy:
  trustedKeys:
    - {kid: %s, file: %s}
tokens:
  accountKeyFile: %s
hq:
  broker: %s
  passwordFile: %s
  maxReconnect: 1s
http:
  listen: 127.0.0.1:0
session:
  idleTimeout: 10m
review:
  timeout: 10m
managerPINs: ["%s"]
`, reg.store, reg.id, filepath.Join(r.dir, reg.store+"-"+reg.id+".db"), reg.scanner.Path(), reg.pos.Path(),
		hqKID, pubPath, acctPath, r.broker.URL(), r.creds.passwordFile(wire.Username(reg.store, reg.id)), pin)
	path := filepath.Join(r.dir, "agent-"+reg.store+"-"+reg.id+".yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

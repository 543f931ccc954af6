// Command decide measures POST /v1/decide against the real register daemon:
// `posguard agent` started as a child process on an HTTP-only configuration
// (no scanner, no POS port, no hq section) with the example policy and a
// fresh state file, driven by C concurrent callers over keep-alive
// loopback connections for a fixed time. Each call is a quiet two-line
// sale with a fresh PG1 token of its own account (minted before the clock
// starts), so every decision is an allow committed durably (fsync) before
// it is answered. Decisions per second and the p50/p99 latency seen by the
// callers are printed in Go benchmark format, one line per run:
//
//	BenchmarkDecideAgent/callers=8/bin=new 12345 312345 ns/op 4012 decisions/s 1.9 p50-ms 2.8 p99-ms
//
// Several binaries can be compared side by side: -bin old=PATH,new=PATH
// runs them in interleaved rounds (old, new, old, new, …) so a machine
// shared with other work loads both alike.
package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posguard/posguard/bench/internal/agentproc"
	"github.com/posguard/posguard/policy/keyfile"
	"github.com/posguard/posguard/policy/token"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "decide:", err)
		os.Exit(1)
	}
}

// Items of the example catalog: a quiet sale no rule fires on.
const (
	onigiri = "4901234200012"
	coffee  = "4901234200029"
	// The example policy's test wallet issuer (policy/testdata).
	issuer    = "posguard-wallet-test"
	issuerKID = "test-2026"
)

type binary struct{ name, path string }

type config struct {
	bins     []binary
	callers  int
	duration time.Duration
	rounds   int
	policy   string // example policy file
	issuer   string // issuer private key file
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("decide", flag.ContinueOnError)
	bins := fs.String("bin", "", "comma-separated `NAME=PATH` posguard binaries to compare in interleaved rounds (default: build this checkout, named \"head\")")
	callers := fs.Int("callers", 8, "concurrent callers")
	duration := fs.Duration("duration", 5*time.Second, "how long each run drives the agent")
	rounds := fs.Int("rounds", 3, "runs per binary, interleaved")
	pol := fs.String("policy", "../policy/testdata/chain-default.yaml", "example policy `FILE` (bootstrap policy; its expiry is moved past the run)")
	iss := fs.String("issuer-key", "../policy/testdata/test-issuer-ed25519.key.pem", "PEM `FILE` of the wallet issuer key the policy trusts (mints the tokens)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *callers < 1 || *rounds < 1 || *duration <= 0 {
		return errors.New("-callers, -rounds and -duration must be positive")
	}
	cfg := config{callers: *callers, duration: *duration, rounds: *rounds, policy: *pol, issuer: *iss}
	dir, err := os.MkdirTemp("", "posguard-decide-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if *bins == "" {
		p, err := agentproc.Build(dir)
		if err != nil {
			return err
		}
		cfg.bins = []binary{{"head", p}}
	} else {
		for _, b := range strings.Split(*bins, ",") {
			name, path, ok := strings.Cut(b, "=")
			if !ok || name == "" || path == "" {
				return fmt.Errorf("-bin: %q is not NAME=PATH", b)
			}
			cfg.bins = append(cfg.bins, binary{name, path})
		}
	}
	key, _, err := keyfile.Load(cfg.issuer)
	if err != nil {
		return fmt.Errorf("issuer key: %w", err)
	}
	for r := range cfg.rounds {
		for _, b := range cfg.bins {
			sub := filepath.Join(dir, fmt.Sprintf("%s-%d", b.name, r))
			if err := os.Mkdir(sub, 0o700); err != nil {
				return err
			}
			res, err := measure(cfg, b, sub, key)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", b.name, r+1, err)
			}
			if _, err := fmt.Fprintln(w, res.line(cfg.callers, b.name)); err != nil {
				return err
			}
			os.RemoveAll(sub)
		}
	}
	return nil
}

// result is one run.
type result struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

func (r result) line(callers int, name string) string {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return fmt.Sprintf("BenchmarkDecideAgent/callers=%d/bin=%s %d %d ns/op %.0f decisions/s %.3f p50-ms %.3f p99-ms",
		callers, name, r.n, r.elapsed.Nanoseconds()/int64(max(r.n, 1)),
		float64(r.n)/r.elapsed.Seconds(), ms(r.quantile(0.5)), ms(r.quantile(0.99)))
}

// writeConfig writes the agent's files into dir: the policy with a far
// expiry, and agentproc's HTTP-only configuration.
func writeConfig(dir, policyFile string) (string, error) {
	b, err := os.ReadFile(policyFile)
	if err != nil {
		return "", fmt.Errorf("policy: %w", err)
	}
	doc := string(b)
	if i := strings.Index(doc, "expiresAt: "); i >= 0 {
		end := strings.IndexByte(doc[i:], '\n')
		doc = doc[:i] + "expiresAt: 2099-01-01T00:00:00Z" + doc[i+end:]
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(doc), 0o600); err != nil {
		return "", err
	}
	return agentproc.WriteConfig(dir, pol)
}

// bodies mints n request bodies, each with a fresh token of its own account.
func bodies(key crypto.Signer, prefix string, n int) ([][]byte, error) {
	out := make([][]byte, n)
	now := time.Now()
	type line struct {
		JAN      string `json:"jan"`
		Quantity int    `json:"quantity"`
	}
	for i := range out {
		tok, err := token.Mint(key, "EdDSA", issuerKID, token.Claims{
			Issuer: issuer, Subject: fmt.Sprintf("%s-acct-%d", prefix, i),
			IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(30 * time.Minute),
			ID: []byte(fmt.Sprintf("%s-cti-%d", prefix, i)),
		})
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(struct {
			Lines []line `json:"lines"`
			Token string `json:"token"`
		}{[]line{{onigiri, 1}, {coffee, 2}}, tok})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// measure starts the agent in dir and drives it for cfg.duration.
func measure(cfg config, b binary, dir string, key crypto.Signer) (result, error) {
	conf, err := writeConfig(dir, cfg.policy)
	if err != nil {
		return result{}, err
	}
	// Enough tokens for 10,000 decisions/s; a run that uses them all
	// ends early and says so.
	reqs, err := bodies(key, filepath.Base(dir), max(1000, int(cfg.duration.Seconds()*10_000)))
	if err != nil {
		return result{}, err
	}
	p, err := agentproc.Start(b.path, conf, 2*time.Minute)
	if err != nil {
		return result{}, err
	}
	res, runErr := drive(cfg, p.URL+"/v1/decide", reqs)
	if err := p.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}

// drive runs cfg.callers callers until cfg.duration has passed or the
// bodies are used up, and collects every call's latency.
func drive(cfg config, url string, reqs [][]byte) (result, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.callers, MaxConnsPerHost: cfg.callers}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
	)
	began := time.Now()
	for range cfg.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<14)
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				t := time.Now()
				err := call(client, url, reqs[i])
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	if firstEr != nil {
		return result{}, firstEr
	}
	if next.Load() >= int64(len(reqs)) {
		fmt.Fprintf(os.Stderr, "decide: all %d tokens used before %v\n", len(reqs), cfg.duration)
	}
	slices.Sort(lat)
	return result{n: len(lat), elapsed: elapsed, lat: lat}, nil
}

// call makes one decision and checks it is a durable allow.
func call(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST /v1/decide: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST /v1/decide: read answer: %w", err)
	}
	var res struct {
		Outcome string `json:"outcome"`
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal(b, &res); err != nil || resp.StatusCode != http.StatusOK || res.Outcome != "allow" || res.EventID == "" {
		return fmt.Errorf("POST /v1/decide: %s %s (want a stored allow)", resp.Status, b)
	}
	return nil
}

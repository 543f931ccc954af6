// Command rss measures the start and the resident memory of the real
// register daemon: `posguard agent`, built once from this checkout (or
// given with -bin), started as a child process against an HTTP-only
// configuration (no scanner, no POS port, no hq section so no broker) with
// the example policy as its bootstrap policy and a state file prepared
// beforehand with 0 or N denylist entries. Each start is timed from exec
// until GET /healthz answers (the URL comes from the "agent running" log
// line), and the agent's CPU time is read from /proc/PID/stat then. After
// a settle time VmRSS is read from /proc/PID/status, one sale is decided
// through POST /v1/decide (paid by an account on the list when N > 0,
// which must be denied: the list was really consulted) and VmRSS is read
// again, then the agent is stopped with SIGTERM. The Go heap figure is
// go_memstats_heap_alloc_bytes from the agent's own /metrics, scraped last
// (it counts objects not yet swept; nothing forces a GC in the daemon).
// Building the state files happens in this process and does not count.
//
// With -baseline a second binary (e.g. one built from main) is measured in
// the same run: the rounds interleave the binaries and sizes, so both see
// the same machine load. Output lines are in Go benchmark format, one per
// start, so benchstat can read them:
//
//	BenchmarkAgent/bin=posguard/denylist=1000000 1 123456789 start-ns 90000000 start-cpu-ns 98765432 rss-bytes 99000000 rss-decided-bytes 4321000 heap-bytes
//
// followed by "#" lines with the median and maximum start time and RSS per
// binary and size, and the load average before and after.
package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/bench/internal/agentproc"
	"github.com/posguard/posguard/bench/internal/loadavg"
	"github.com/posguard/posguard/wire"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

// measureConfig is what one measurement needs besides the denylist size.
type measureConfig struct {
	bin     string        // the posguard binary
	label   string        // its name in the output: bin=label
	policy  string        // bootstrap policy file
	settle  time.Duration // idle time between /healthz and reading RSS
	startTO time.Duration // how long the agent may take to start
}

func run(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	entries := fs.String("entries", "0,1000000", "comma-separated denylist sizes to measure")
	policyFile := fs.String("policy", "../policy/testdata/chain-default.yaml", "bootstrap policy `FILE` of the agent")
	settle := fs.Duration("settle", 2*time.Second, "idle time after /healthz answers before RSS is read")
	bin := fs.String("bin", "", "posguard `BINARY` to run (default: build github.com/posguard/posguard/cmd/posguard)")
	baseline := fs.String("baseline", "", "a second posguard `BINARY` (e.g. built from main) measured in the same rounds, labelled bin=baseline")
	rounds := fs.Int("rounds", 1, "starts per binary and size, interleaved")
	startTO := fs.Duration("start-timeout", 2*time.Minute, "how long a start may take before the run fails")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", *rounds)
	}
	var sizes []int
	for _, e := range strings.Split(*entries, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(e))
		if err != nil || n < 0 {
			return fmt.Errorf("-entries: %q is not a size", e)
		}
		sizes = append(sizes, n)
	}
	dir, err := os.MkdirTemp("", "posguard-rss-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	mc := measureConfig{bin: *bin, label: "posguard", policy: *policyFile, settle: *settle, startTO: *startTO}
	if mc.bin == "" {
		if mc.bin, err = agentproc.Build(dir); err != nil {
			return err
		}
	}
	bins := []measureConfig{mc}
	if *baseline != "" {
		b := mc
		b.bin, b.label = *baseline, "baseline"
		bins = append(bins, b)
	}
	// One state file per size, shared by the binaries (the layout is the
	// same), each listing the accounts of all starts' sales.
	starts := *rounds * len(bins) * len(sizes)
	dirs := make([]string, len(sizes))
	for i, n := range sizes {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("denylist-%d", n))
		if err := os.Mkdir(dirs[i], 0o700); err != nil {
			return err
		}
		if err := prepare(dirs[i], mc.policy, n, starts); err != nil {
			return fmt.Errorf("prepare %d entries: %w", n, err)
		}
	}
	load0 := loadavg.String()
	results := map[string][]result{}
	var order []string
	next := 0 // the next start's token
	for range *rounds {
		for i, n := range sizes {
			for _, b := range bins {
				r, err := measure(b, dirs[i], n, next)
				if err != nil {
					return fmt.Errorf("measure %s with %d entries: %w", b.label, n, err)
				}
				next++
				name := fmt.Sprintf("BenchmarkAgent/bin=%s/denylist=%d", b.label, n)
				if _, ok := results[name]; !ok {
					order = append(order, name)
				}
				results[name] = append(results[name], r)
				line := fmt.Sprintf("%s 1 %d start-ns %d start-cpu-ns %d rss-bytes %d rss-decided-bytes", name, r.start.Nanoseconds(), r.startCPU.Nanoseconds(), r.rss, r.rssDecided)
				if r.heap > 0 {
					line += fmt.Sprintf(" %d heap-bytes", r.heap)
				}
				fmt.Println(line)
			}
		}
	}
	fmt.Printf("# load average before %s, after %s (%d CPUs)\n", load0, loadavg.String(), runtime.NumCPU())
	for _, name := range order {
		rs := results[name]
		st := make([]time.Duration, len(rs))
		cpu := make([]time.Duration, len(rs))
		rss := make([]uint64, len(rs))
		dec := make([]uint64, len(rs))
		for i, r := range rs {
			st[i], cpu[i], rss[i], dec[i] = r.start, r.startCPU, r.rss, r.rssDecided
		}
		slices.Sort(st)
		slices.Sort(cpu)
		slices.Sort(rss)
		slices.Sort(dec)
		fmt.Printf("# %s: %d starts; start to /healthz median %v, max %v (CPU median %v, max %v); RSS median %.1f MiB (max %.1f), after a decision %.1f MiB (max %.1f)\n",
			strings.TrimPrefix(name, "BenchmarkAgent/"), len(rs), st[len(st)/2].Round(time.Millisecond), st[len(st)-1].Round(time.Millisecond),
			cpu[len(cpu)/2], cpu[len(cpu)-1], mib(rss[len(rss)/2]), mib(rss[len(rss)-1]), mib(dec[len(dec)/2]), mib(dec[len(dec)-1]))
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func options() state.Options {
	return state.Options{Store: "S001", Register: "R1", Logger: slog.New(slog.DiscardHandler)}
}

// saleToken is the opaque one-time code paying start i's sale (the example
// policy's "otherpay" wallet: 28 and 18 digits).
func saleToken(i int) string { return fmt.Sprintf("28%018d", i) }

// saleAccount is the account the agent derives from saleToken(i): the
// wallet's name and the keyed hash of the code (policy/token).
func saleAccount(i int) string {
	m := hmac.New(sha256.New, []byte(agentproc.AccountKey))
	m.Write([]byte("opaque\x00"))
	m.Write([]byte(saleToken(i)))
	return "otherpay:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// chunk is the most accounts written in one transaction.
const chunk = 1_000_000

// prepare writes dir/state.db holding n denylist entries and the agent's
// configuration. The list holds the accounts of the first starts' sales
// and realistic account keys (32 hex characters, as the keyed account
// hash). Lists beyond a million are added
// by deltas of a million, as HQ's snapshots stop at 2,000,000.
func prepare(dir, policyFile string, n, starts int) error {
	path := filepath.Join(dir, "state.db")
	s, err := state.Open(path, options())
	if err != nil {
		return fmt.Errorf("create state %s: %w", path, err)
	}
	defer s.Close()
	if _, err := agentproc.WriteConfig(dir, policyFile); err != nil {
		return err
	}
	accounts := make([]string, 0, min(n, chunk))
	for i := 0; i < n; i++ {
		if i < starts {
			accounts = append(accounts, saleAccount(i))
		} else {
			accounts = append(accounts, fmt.Sprintf("%016x%016x", i, uint64(i)*0x9E3779B97F4A7C15))
		}
		if len(accounts) < chunk && i < n-1 {
			continue
		}
		seq := s.DenylistSeq() + 1
		v := wire.ListVersion{Epoch: "bench", Seq: seq}
		if seq == 1 {
			_, err = s.ReplaceDenylist(v, time.Now(), accounts)
		} else {
			err = s.ApplyDenylistDelta(v, time.Now(), accounts, nil)
		}
		if err != nil {
			return fmt.Errorf("fill denylist: %w", err)
		}
		accounts = accounts[:0]
	}
	return nil
}

// result is one start's figures.
type result struct {
	start           time.Duration // exec until /healthz answered
	startCPU        time.Duration // the agent's CPU time then (user + system)
	rss, rssDecided uint64        // VmRSS idle, and after one decision
	heap            uint64        // Go heap at the end (0: unknown)
}

// measure starts mc.bin on the state file and configuration in dir (n
// denylist entries) and decides start i's sale.
func measure(mc measureConfig, dir string, n, i int) (result, error) {
	var res result
	began := time.Now()
	p, err := agentproc.Start(mc.bin, filepath.Join(dir, "agent.yaml"), mc.startTO)
	if err != nil {
		return res, err
	}
	url := p.URL
	if err := healthz(url); err != nil {
		p.Kill()
		return res, err
	}
	res.start = time.Since(began)
	// What the start cost the agent in CPU, steadier than the wall clock
	// on a loaded machine (10 ms resolution).
	cpu, cpuErr := cpuTime(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if cpuErr != nil {
		p.Kill()
		return res, cpuErr
	}
	res.startCPU = cpu
	select {
	case <-time.After(mc.settle):
	case <-p.Exited():
		return res, fmt.Errorf("agent exited while idle: %w", p.Stop())
	}
	status := fmt.Sprintf("/proc/%d/status", p.Pid())
	if res.rss, err = vmRSS(status); err != nil {
		p.Kill()
		return res, err
	}
	outcome, err := decide(url, saleToken(i))
	if err != nil {
		p.Kill()
		return res, err
	}
	if i < n && outcome != "deny" { // saleAccount(i) is on the list
		p.Kill()
		return res, fmt.Errorf("sale paid by a denylisted account: outcome %q, want deny", outcome)
	}
	if res.rssDecided, err = vmRSS(status); err != nil {
		p.Kill()
		return res, err
	}
	heap, heapErr := heapAlloc(url + "/metrics")
	if err := p.Stop(); err != nil {
		return res, err
	}
	if heapErr == nil {
		res.heap = heap
	} else {
		fmt.Fprintln(os.Stderr, "rss: no heap figure:", heapErr)
	}
	return res, nil
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// healthz waits for GET url/healthz to answer 200.
func healthz(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// decide sells one onigiri paid by token and returns the outcome.
func decide(url, token string) (string, error) {
	body := fmt.Sprintf(`{"token":%q,"lines":[{"jan":"4901234200012","quantity":1}]}`, token)
	resp, err := httpc.Post(url+"/v1/decide", "application/json", strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("POST /v1/decide: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return "", fmt.Errorf("POST /v1/decide: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || ans.Outcome == "" {
		return "", fmt.Errorf("POST /v1/decide: %s: %s", resp.Status, ans.Error)
	}
	return ans.Outcome, nil
}

// vmRSS reads the resident set size from a /proc/PID/status file.
func vmRSS(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	return 0, fmt.Errorf("no VmRSS in %s", path)
}

// cpuTime reads a process's user and system CPU time from /proc/PID/stat.
func cpuTime(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after it are
	// counted from its closing parenthesis: utime and stime are 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("read CPU time: %s: unexpected format", path)
	}
	var ticks uint64
	for _, v := range f[11:13] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time: %s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// heapAlloc scrapes go_memstats_heap_alloc_bytes from the agent's metrics.
func heapAlloc(url string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("parse go_memstats_heap_alloc_bytes %q: %w", v, err)
			}
			return uint64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no go_memstats_heap_alloc_bytes in " + url)
}

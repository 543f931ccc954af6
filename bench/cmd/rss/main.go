// Command rss measures the resident memory of the real register daemon:
// `posguard agent`, built once from this checkout, started as a child
// process against an HTTP-only configuration (no scanner, no POS port, no
// hq section so no broker) with the example policy as its bootstrap policy
// and a state file prepared beforehand with 0 or N denylist entries (the
// agent mirrors them in memory for O(1) lookups). Once the agent logs
// "agent running" it is left idle for a settle time, then VmRSS is read
// from /proc/PID/status and the agent is stopped with SIGTERM. The Go heap
// figure is go_memstats_heap_alloc_bytes from the agent's own /metrics,
// scraped after the RSS is read (it counts objects not yet swept; nothing
// forces a GC in the daemon). Building the state file happens in this
// process and does not count.
//
// Output lines are in Go benchmark format, so benchstat can read them:
//
//	BenchmarkAgentRSS/denylist=1000000 1 123456789 rss-bytes 98765432 heap-bytes
//
// heap-bytes is left out when /metrics cannot be read. The HTTP server,
// housekeeping and metrics of the daemon are in the figure; the scanner and
// POS links and the MQTT client to HQ are not configured, so their buffers
// and goroutines are not.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/posguard/posguard/agent/state"
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
	policy  string        // bootstrap policy file
	settle  time.Duration // idle time between "agent running" and reading RSS
	startTO time.Duration // how long the agent may take to start
}

func run(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	entries := fs.String("entries", "0,1000000", "comma-separated denylist sizes to measure")
	policyFile := fs.String("policy", "../policy/testdata/chain-default.yaml", "bootstrap policy `FILE` of the agent")
	settle := fs.Duration("settle", 2*time.Second, "idle time after the agent is running before RSS is read")
	bin := fs.String("bin", "", "posguard `BINARY` to run (default: build github.com/posguard/posguard/cmd/posguard)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
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
	mc := measureConfig{bin: *bin, policy: *policyFile, settle: *settle, startTO: 2 * time.Minute}
	if mc.bin == "" {
		if mc.bin, err = build(dir); err != nil {
			return err
		}
	}
	for _, n := range sizes {
		sub := filepath.Join(dir, fmt.Sprintf("denylist-%d", n))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return err
		}
		if err := measure(os.Stdout, mc, sub, n); err != nil {
			return fmt.Errorf("measure %d entries: %w", n, err)
		}
		// The next size gets its own directory; free this one's disk now.
		os.RemoveAll(sub)
	}
	return nil
}

// build compiles the posguard command into dir. It builds in the root
// module's directory (found through the bench module's replace directive,
// or the root module itself), whose go.sum covers the command's
// dependencies.
func build(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/posguard/posguard").Output()
	if err != nil {
		return "", fmt.Errorf("find the posguard module: %w", err)
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		return "", errors.New("find the posguard module: no directory (run from the bench or root module)")
	}
	bin := filepath.Join(dir, "posguard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/posguard")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build posguard in %s: %w", root, err)
	}
	return bin, nil
}

func options() state.Options {
	return state.Options{Store: "S001", Register: "R1", Logger: slog.New(slog.DiscardHandler)}
}

// prepare writes a state file holding n denylist entries of realistic
// account keys (32 hex characters, as the keyed account hash).
func prepare(path string, n int) error {
	s, err := state.Open(path, options())
	if err != nil {
		return fmt.Errorf("create state %s: %w", path, err)
	}
	defer s.Close()
	if n == 0 {
		return nil
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%032x", uint64(i)*0x9E3779B97F4A7C15)
	}
	if _, err := s.ReplaceDenylist(wire.ListVersion{Epoch: "bench", Seq: 1}, time.Now(), accounts); err != nil {
		return fmt.Errorf("fill denylist: %w", err)
	}
	return nil
}

// writeConfig writes an HTTP-only agent configuration into dir (state file
// state.db, account key account.key) and returns its path.
func writeConfig(dir, policyFile string) (string, error) {
	pol, err := filepath.Abs(policyFile)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(pol); err != nil {
		return "", fmt.Errorf("policy: %w", err)
	}
	key := filepath.Join(dir, "account.key")
	if err := os.WriteFile(key, []byte("rss-bench-account-key-0123456789\n"), 0o600); err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "agent.yaml")
	doc := fmt.Sprintf(`store: S001
register: R1
state: %q
policy:
  bootstrap: %q
tokens: {accountKeyFile: %q}
http: {listen: "127.0.0.1:0"}
`, filepath.Join(dir, "state.db"), pol, key)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		return "", err
	}
	return cfg, nil
}

var runningRE = regexp.MustCompile(`msg="agent running".* http=(http://\S+)`)

// measure prepares a state file with n denylist entries in dir, runs the
// agent on it and writes one benchmark line to w.
func measure(w io.Writer, mc measureConfig, dir string, n int) error {
	if err := prepare(filepath.Join(dir, "state.db"), n); err != nil {
		return err
	}
	cfg, err := writeConfig(dir, mc.policy)
	if err != nil {
		return err
	}
	cmd := exec.Command(mc.bin, "agent", "--config", cfg)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	var (
		mu   sync.Mutex
		logs strings.Builder
		urls = make(chan string, 1)
		done = make(chan struct{}) // stderr closed: the agent has exited
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	log := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	stop := func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return fmt.Errorf("SIGTERM: %w", err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			cmd.Wait()
			return fmt.Errorf("agent did not stop within 30s of SIGTERM:\n%s", log())
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("agent exit: %w:\n%s", err, log())
		}
		return nil
	}
	var url string
	select {
	case url = <-urls:
	case <-done:
		cmd.Wait()
		return fmt.Errorf("agent exited at start:\n%s", log())
	case <-time.After(mc.startTO):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		return fmt.Errorf("agent not running after %v:\n%s", mc.startTO, log())
	}
	select {
	case <-time.After(mc.settle):
	case <-done:
		cmd.Wait()
		return fmt.Errorf("agent exited while idle:\n%s", log())
	}
	rss, err := vmRSS(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		stop()
		return err
	}
	heap, heapErr := heapAlloc(url + "/metrics")
	if err := stop(); err != nil {
		return err
	}
	line := fmt.Sprintf("BenchmarkAgentRSS/denylist=%d 1 %d rss-bytes", n, rss)
	if heapErr == nil {
		line += fmt.Sprintf(" %d heap-bytes", heap)
	} else {
		fmt.Fprintln(os.Stderr, "rss: no heap figure:", heapErr)
	}
	_, err = fmt.Fprintln(w, line)
	return err
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

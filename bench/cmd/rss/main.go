// Command rss measures the resident memory of the agent's state: a process
// that opens an agent/state file (with 0 or N denylist entries, mirrored in
// memory for O(1) lookups) and loads the example policy, as an idle agent
// does before its first sale. Each measurement runs in a fresh child
// process so building the file does not count. Output lines are in Go
// benchmark format, so benchstat can read them:
//
//	BenchmarkAgentRSS/denylist=1000000 1 123456789 rss-bytes 98765432 heap-bytes
//
// The MQTT link, HTTP server and scanner goroutines of the full agent are
// not in this figure (the daemon was not finished when this was written).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/token"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	entries := fs.String("entries", "0,1000000", "comma-separated denylist sizes to measure")
	policyFile := fs.String("policy", "../policy/testdata/chain-default.yaml", "policy `FILE` the agent would hold")
	measure := fs.String("measure", "", "internal: measure this state `FILE` in this process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *measure != "" {
		return measureOne(os.Stdout, *measure, *policyFile, fs.Arg(0))
	}
	dir, err := os.MkdirTemp("", "posguard-rss-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	for _, e := range strings.Split(*entries, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(e))
		if err != nil || n < 0 {
			return fmt.Errorf("-entries: %q is not a size", e)
		}
		path := filepath.Join(dir, fmt.Sprintf("state-%d.db", n))
		if err := prepare(path, n); err != nil {
			return err
		}
		cmd := exec.Command(self, "-measure", path, "-policy", *policyFile, fmt.Sprint("denylist=", n))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("measure %d entries: %w", n, err)
		}
	}
	return nil
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
	if err := s.ReplaceDenylist(1, accounts); err != nil {
		return fmt.Errorf("fill denylist: %w", err)
	}
	return nil
}

func measureOne(w io.Writer, path, policyFile, name string) error {
	p, err := policy.LoadFile(policyFile)
	if err != nil {
		return err
	}
	_ = token.NewVerifier(&p.Tokens, []byte("rss-account-key"))
	s, err := state.Open(path, options())
	if err != nil {
		return fmt.Errorf("open state %s: %w", path, err)
	}
	defer s.Close()
	if s.Denylisted("nobody") {
		return errors.New("lookup of an unknown account answered true")
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss, err := vmRSS()
	if err != nil {
		return err
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	fmt.Fprintf(w, "BenchmarkAgentRSS/%s 1 %d rss-bytes %d heap-bytes\n", name, rss, sample[0].Value.Uint64())
	return nil
}

// vmRSS reads the resident set size from /proc/self/status.
func vmRSS() (uint64, error) {
	f, err := os.Open("/proc/self/status")
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
	return 0, errors.New("no VmRSS in /proc/self/status")
}

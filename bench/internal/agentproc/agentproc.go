// Package agentproc builds the posguard command from this checkout and runs
// `posguard agent` as a child process for the measurements that need the
// real daemon.
package agentproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the posguard command into dir and returns the binary's
// path. It builds in the root module's directory (found through the bench
// module's replace directive, or the root module itself), whose go.sum
// covers the command's dependencies.
func Build(dir string) (string, error) {
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

// AccountKey is the agent's account key (tokens.accountKeyFile), from
// which it derives the account of an opaque wallet code.
const AccountKey = "bench-account-key-0123456789abcd"

// WriteConfig writes an HTTP-only agent configuration into dir (state file
// state.db, account key account.key; no scanner, POS port or hq section)
// with policyFile as its bootstrap policy, and returns its path.
func WriteConfig(dir, policyFile string) (string, error) {
	pol, err := filepath.Abs(policyFile)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(pol); err != nil {
		return "", fmt.Errorf("policy: %w", err)
	}
	key := filepath.Join(dir, "account.key")
	if err := os.WriteFile(key, []byte(AccountKey+"\n"), 0o600); err != nil {
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

// Proc is a running posguard command: `posguard agent`, or another
// command started with StartCommand (`posguard hq`).
type Proc struct {
	// URL is the command's HTTP address, from the log line it announces
	// its listener with.
	URL string
	cmd *exec.Cmd

	mu   sync.Mutex
	logs strings.Builder
	done chan struct{} // stderr closed: the command has exited
}

var runningRE = regexp.MustCompile(`msg="agent running".* http=(http://\S+)`)

// Start runs `bin agent --config cfg` and waits up to timeout for it to log
// "agent running".
func Start(bin, cfg string, timeout time.Duration) (*Proc, error) {
	return StartCommand(bin, []string{"agent", "--config", cfg}, runningRE, timeout)
}

// StartCommand runs bin with args and waits up to timeout for a log line
// matching ready, whose first group is the command's URL.
func StartCommand(bin string, args []string, ready *regexp.Regexp, timeout time.Duration) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			// Keep the start of the log (for errors), not a whole run's.
			if p.logs.Len() < 1<<20 {
				p.logs.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.URL = <-urls:
		return p, nil
	case <-p.done:
		cmd.Wait()
		return nil, fmt.Errorf("%s exited at start:\n%s", args[0], p.Log())
	case <-time.After(timeout):
		p.Kill()
		return nil, fmt.Errorf("%s not running after %v:\n%s", args[0], timeout, p.Log())
	}
}

// Pid is the agent's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the agent has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Log is what the agent has logged so far (its first MiB).
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Kill kills the agent at once and collects its exit.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit. On an agent
// that has already exited it only collects the exit status.
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		if err := p.cmd.Wait(); err != nil {
			return fmt.Errorf("agent exited: %w:\n%s", err, p.Log())
		}
		return errors.New("agent had exited")
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return fmt.Errorf("agent did not stop within 30s of SIGTERM:\n%s", p.Log())
	}
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("agent exit: %w:\n%s", err, p.Log())
	}
	return nil
}

// Package mosquittotest runs a private Mosquitto with the shipped
// configuration (scripts/mosquitto/mosquitto.conf, the ACL and certificates
// of scripts/gen-certs.sh, the share-group plugin) for tests of any package:
// what a test proves over it holds for the broker a store deploys, not for
// one configured by the test.
package mosquittotest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/internal/testenv"
)

// Wait bounds every wait on the broker: start, connect, a message.
const Wait = 10 * time.Second

// Root is the repository's root directory, found from this file's place in
// it, so the helpers work from any package's test directory.
func Root(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("mosquittotest: cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Path is the path of a repository file, given relative to its root.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	return filepath.Join(Root(tb), filepath.FromSlash(rel))
}

// Binary finds mosquitto. Without it the test skips, unless
// POSGUARD_INTEGRATION=1 says this machine is meant to run it (testenv.Need).
func Binary(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("mosquitto")
	testenv.Need(tb, "Mosquitto", err)
	return p
}

// GenCerts runs the shipped gen-certs.sh into dir and checks that the ACL
// it wrote starts with the shipped template.
func GenCerts(tb testing.TB, dir string, args ...string) {
	tb.Helper()
	script := Path(tb, "scripts/gen-certs.sh")
	// Read the script and the ACL template here too, so go test's cache
	// notices when they change (it cannot see what a subprocess reads).
	if _, err := os.ReadFile(script); err != nil {
		tb.Fatal(err)
	}
	template, err := os.ReadFile(Path(tb, "scripts/mosquitto/acl"))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command(script, append([]string{"-o", dir}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("gen-certs.sh %v: %v\n%s", args, err, out)
	}
	acl, err := os.ReadFile(filepath.Join(dir, "acl"))
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.HasPrefix(acl, template) {
		tb.Fatalf("generated acl does not start with the shipped template:\n%s", acl)
	}
}

// WriteConfig writes ConfigText into state/mosquitto.conf and returns its
// path.
func WriteConfig(tb testing.TB, certs, state string, port int) string {
	tb.Helper()
	path := filepath.Join(state, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(ConfigText(tb, certs, state, port)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// ConfigText is the shipped mosquitto.conf rewritten for a test: an
// ephemeral port on 127.0.0.1, the certificates and ACL in certs, state
// kept in state, logs to stderr. Every setting it replaces must be in the
// shipped file, so the test runs the real configuration, not one of its own.
func ConfigText(tb testing.TB, certs, state string, port int) string {
	tb.Helper()
	src, err := os.ReadFile(Path(tb, "scripts/mosquitto/mosquitto.conf"))
	if err != nil {
		tb.Fatal(err)
	}
	b := ReplaceSettings(tb, "mosquitto.conf", src, map[string]string{
		"listener":             fmt.Sprintf("listener %d 127.0.0.1", port),
		"cafile":               "cafile " + filepath.Join(certs, "ca.crt"),
		"certfile":             "certfile " + filepath.Join(certs, "server.crt"),
		"keyfile":              "keyfile " + filepath.Join(certs, "server.key"),
		"acl_file":             "acl_file " + filepath.Join(certs, "acl"),
		"plugin":               "plugin " + Plugin(tb),
		"persistence_location": "persistence_location " + state + "/",
		"log_dest":             "log_dest stderr",
	})
	for _, want := range []string{"require_certificate true", "use_identity_as_username true", "use_username_as_clientid true", "allow_anonymous false"} {
		if !strings.Contains(string(src), "\n"+want+"\n") {
			tb.Fatalf("shipped mosquitto.conf lacks %q", want)
		}
	}
	// Running as root, mosquitto would drop to user mosquitto, which cannot
	// read the test's temp directory.
	if u, err := user.Current(); err == nil {
		b += "user " + u.Username + "\n"
	}
	return b
}

// ReplaceSettings replaces the lines of a shipped configuration that set
// the keys of replace, each of which must be set exactly once.
func ReplaceSettings(tb testing.TB, name string, src []byte, replace map[string]string) string {
	tb.Helper()
	seen := map[string]int{}
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if r, ok := replace[key]; ok && !strings.HasPrefix(line, "#") {
			seen[key]++
			line = r
		}
		b.WriteString(line + "\n")
	}
	for key := range replace {
		if seen[key] != 1 {
			tb.Fatalf("shipped %s has %d %q lines, want 1", name, seen[key], key)
		}
	}
	return b.String()
}

// Plugin compiles the shipped posguard_share_acl.c, once per test binary.
// Without a C compiler and the mosquitto-dev headers the test skips (fails
// under POSGUARD_INTEGRATION=1), as without mosquitto.
func Plugin(tb testing.TB) string {
	tb.Helper()
	src := Path(tb, "scripts/mosquitto/plugin/posguard_share_acl.c")
	plugin.once.Do(func() {
		if _, err := os.ReadFile(src); err != nil { // for go test's cache
			plugin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "posguard-plugin-")
		if err != nil {
			plugin.err = err
			return
		}
		plugin.path = filepath.Join(dir, "posguard_share_acl.so")
		out, err := exec.Command("cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", plugin.path, src).CombinedOutput()
		if err != nil {
			plugin.err = fmt.Errorf("cc posguard_share_acl.c: %v\n%s", err, out)
		}
	})
	testenv.Need(tb, "a C compiler with the mosquitto-dev headers", plugin.err)
	return plugin.path
}

// plugin is the one build of the plugin a test binary makes: compiling it
// costs a second, and the file is read-only for every broker.
var plugin struct {
	once sync.Once
	path string
	err  error
}

// FreePort is a TCP port on 127.0.0.1 free a moment ago, for a broker
// whose listener the configuration names.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs mosquitto with the shipped configuration and the certificates
// and ACL in certs (made by GenCerts) until the test ends, and returns its
// host:port and its log.
func Start(tb testing.TB, bin, certs string) (string, *syncbuf.Buffer) {
	tb.Helper()
	state := tb.TempDir()
	port := FreePort(tb)
	m := Run(tb, bin, WriteConfig(tb, certs, state, port), port, "mosquitto")
	return m.Addr, m.Logs
}

// Proc is a running mosquitto.
type Proc struct {
	Addr string // host:port it listens on
	Logs *syncbuf.Buffer
	cmd  *exec.Cmd
	// exited is closed once the process has ended, with err.
	exited chan struct{}
	err    error
}

// Run starts mosquitto on conf, which listens on port, waits until it
// does, and stops it when the test ends unless stopped before; a failed
// test logs its output, under name.
func Run(tb testing.TB, bin, conf string, port int, name string) *Proc {
	tb.Helper()
	m := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Logs: &syncbuf.Buffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout, m.cmd.Stderr = m.Logs, m.Logs
	if err := m.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.exited) }()
	tb.Cleanup(func() {
		m.Stop()
		if tb.Failed() {
			tb.Logf("%s log:\n%s", name, m.Logs.String())
		}
	})
	deadline := time.Now().Add(Wait)
	for {
		select {
		case <-m.exited:
			tb.Fatalf("%s exited: %v\n%s", name, m.err, m.Logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not listening on %s: %v\n%s", name, m.Addr, err, m.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends mosquitto as an operator would (SIGTERM: it saves its
// persistence file); stopping twice is harmless.
func (m *Proc) Stop() {
	select {
	case <-m.exited:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(Wait):
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// WaitLog waits for the broker to log text: the one way to know it has
// handled a vanished connection (and so published or dropped its will).
func WaitLog(tb testing.TB, logs *syncbuf.Buffer, text string) {
	tb.Helper()
	deadline := time.Now().Add(Wait)
	for !strings.Contains(logs.String(), text) {
		if time.Now().After(deadline) {
			tb.Fatalf("broker never logged %q", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TLSConfig is a client's TLS: the CA of caDir and, unless name is "", the
// certificate name.crt/name.key of certDir (as gen-certs.sh names them).
func TLSConfig(tb testing.TB, caDir, certDir, name string) *tls.Config {
	tb.Helper()
	caPEM, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		tb.Fatal("bad ca.crt")
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if name != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

package hqsync

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/posguard/posguard/agent/state"
	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/internal/mqttconn"
	"github.com/posguard/posguard/internal/testenv"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// BenchmarkFactsPropagation measures the replay window: from a decision
// committed at R1 (its facts stored in the same transaction) to the token
// marked seen at R2, on loopback, both fsyncs included. It reports p50 and
// p99 per fact; each fact is sent alone, as at a till. Two brokers: the
// embedded one, and a private Mosquitto (skipped without mosquitto, failed
// under POSGUARD_INTEGRATION=1).
func BenchmarkFactsPropagation(b *testing.B) {
	regs := []string{"s1/r1", "s1/r2"}
	b.Run("broker=embedded", func(b *testing.B) {
		br, auth := embedtest.Start(b, regs...)
		benchPropagation(b, func(id string) mqttconn.Config { return auth.MQTT(br.URL(), id) })
	})
	b.Run("broker=mosquitto", func(b *testing.B) {
		url, auth := startMosquitto(b, regs...)
		benchPropagation(b, func(id string) mqttconn.Config { return auth.MQTT(url, id) })
	})
}

// benchPropagation runs two tills of store s1 on the broker mqtt names.
func benchPropagation(b *testing.B, mqtt func(identity string) mqttconn.Config) {
	till := func(reg string) (*state.Store, *Client) {
		st, err := state.Open(filepath.Join(b.TempDir(), reg+".db"), state.Options{Store: "s1", Register: reg, ShareFacts: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		c, err := New(Config{MQTT: mqtt("s1/" + reg), Store: "s1", Register: reg, State: st,
			Now:          func() time.Time { return now },
			ActivePolicy: func() int64 { return 0 }, OnPolicy: func(*policy.Policy) {},
			Status: func() wire.Status { return wire.Status{} }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
		return st, c
	}
	st1, c1 := till("r1")
	st2, c2 := till("r2")
	deadline := time.Now().Add(10 * time.Second)
	for !c1.Peers().Reachable || !c2.Peers().Reachable {
		if time.Now().After(deadline) {
			b.Fatal("tills not connected with their facts subscription after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("pg1:bench-%d", i)
		began := time.Now()
		_, err := st1.Commit(context.Background(), state.Record{Request: sale(i, "acct"),
			Decision: &policy.Decision{Outcome: policy.Allow, Policy: policy.PolicyRef{Name: "p", Version: 1}}, ReplayKey: key})
		if err != nil {
			b.Fatal(err)
		}
		c1.Kick()
		// Polled with a sleep, not a spin: on a 2-core machine a spinning
		// waiter takes a core from the broker and the two tills, and the
		// figure would measure that. 50 µs is far below the window.
		for !st2.Seen(key) {
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(began))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// startMosquitto runs a private mosquitto on an ephemeral loopback port
// with a plain configuration: password authentication (mosquitto_passwd)
// and no TLS, ACL or plugin, which the shipped configuration adds and
// scripts/mosquitto tests. On loopback with connections already up, TLS and
// ACL checks cost microseconds per message; the fsyncs and hops measured
// here cost milliseconds. set_tcp_nodelay is the shipped configuration's
// (see there why). The passwords are embedtest's, so the tills connect as
// to the embedded broker.
func startMosquitto(b *testing.B, identities ...string) (string, *embedtest.Auth) {
	b.Helper()
	bin, err := exec.LookPath("mosquitto")
	if _, serr := os.Stat("/usr/sbin/mosquitto"); err != nil && serr == nil {
		bin, err = "/usr/sbin/mosquitto", nil // not on every user's PATH
	}
	testenv.Need(b, "Mosquitto", err)
	passwd, err := exec.LookPath("mosquitto_passwd")
	testenv.Need(b, "mosquitto_passwd", err)

	auth := embedtest.New(b, identities...)
	dir := b.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	for i, id := range identities {
		args := []string{"-b", pwFile, id, auth.Password(id)}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			b.Fatalf("mosquitto_passwd %s: %v\n%s", id, err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\nlog_dest stderr\nlog_type error\nset_tcp_nodelay true\n", port, pwFile)
	// Running as root, mosquitto would drop to user mosquitto, which cannot
	// read the temp directory.
	if u, err := user.Current(); err == nil {
		conf += "user " + u.Username + "\n"
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	logFile := filepath.Join(dir, "mosquitto.log")
	logs, err := os.Create(logFile)
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logs, logs
	log := func() string { out, _ := os.ReadFile(logFile); return string(out) }
	if err := cmd.Start(); err != nil {
		b.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			b.Fatalf("mosquitto exited: %v\n%s", err, log())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "tcp://" + addr, auth
		}
		if time.Now().After(deadline) {
			b.Fatalf("mosquitto not listening on %s\n%s", addr, log())
		}
	}
}

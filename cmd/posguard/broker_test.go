package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/hq/broker/embedtest"
	"github.com/posguard/posguard/internal/syncbuf"
)

// waitLine waits for a stderr line holding every one of parts.
func waitLine(t *testing.T, log *syncbuf.Buffer, within time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for line := range strings.Lines(log.String()) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stderr line with %q within %v; stderr:\n%s", parts, within, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A broker that is not there is said on stderr, with its URL and the
// error, within seconds (the design promise is 5 s; the bound here is
// generous for a loaded machine); the command keeps retrying and says so
// again once a broker appears on that address.
func TestBrokerUnreachableIsSaid(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T, url string, auth *embedtest.Auth) []string
	}{
		{"hq", func(t *testing.T, url string, auth *embedtest.Auth) []string {
			return []string{"hq", "--broker", url, "--mqtt-password-file", auth.PasswordFile("hq"),
				"--state", filepath.Join(t.TempDir(), "hq.db"), "--listen", "127.0.0.1:0"}
		}},
		{"display", func(t *testing.T, url string, auth *embedtest.Auth) []string {
			return []string{"display", "-broker", url, "-mqtt-password-file", auth.PasswordFile("display/S001"),
				"-store", "S001", "-listen", "127.0.0.1:0"}
		}},
		{"agent", func(t *testing.T, url string, auth *embedtest.Auth) []string {
			dir := t.TempDir()
			cfg := agentFiles(t, dir)
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			b = fmt.Appendf(b, "hq: {broker: %q, passwordFile: %q}\n", url, auth.PasswordFile("S001/R1"))
			if err := os.WriteFile(cfg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"agent", "--config", cfg}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // a closed port: connection refused
			url := "tcp://" + addr
			auth := embedtest.New(t, "hq", "display/S001", "S001/R1")
			var stderr syncbuf.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}, tc.args(t, url, auth))
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case <-done:
				case <-time.After(15 * time.Second):
					t.Errorf("%s did not stop", tc.name)
				}
			})
			waitLine(t, &stderr, 15*time.Second, "level=WARN", "MQTT broker unreachable; retrying", "broker="+url, "connection refused")
			select {
			case code := <-done:
				t.Fatalf("%s exited (%d) instead of retrying; stderr:\n%s", tc.name, code, stderr.String())
			default:
			}

			auth.Start(addr)
			waitLine(t, &stderr, 15*time.Second, "level=INFO", "connected to MQTT broker", "broker="+url)
		})
	}
}

// A broker address without a scheme is the commonest slip; every command
// says what to write instead of a URL parser's complaint.
func TestBrokerWithoutScheme(t *testing.T) {
	dir := t.TempDir()
	cfg := agentFiles(t, dir)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, "hq: {broker: \"127.0.0.1:1883\"}\n"...), 0o600)
	want := `"127.0.0.1:1883" has no scheme: write tcp://127.0.0.1:1883`
	for _, args := range [][]string{
		{"hq", "--broker", "127.0.0.1:1883", "--state", filepath.Join(dir, "hq.db")},
		{"display", "-broker", "127.0.0.1:1883", "-store", "S001", "-listen", "127.0.0.1:0"},
		{"agent", "--config", cfg},
		{"agent", "--check", "--config", cfg},
	} {
		// agent --check lists the configuration's problems on stdout.
		code, stdout, stderr := runCLI(t, "", args...)
		if code != 1 || !strings.Contains(stdout+stderr, want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", args, code, stdout, stderr, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hq.db")); err == nil {
		t.Error("hq created its state file before checking --broker")
	}
}

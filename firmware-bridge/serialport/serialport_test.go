package serialport

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/posguard/posguard/firmware-bridge/sim"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 70 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 70, 70}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Errorf("Next #%d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 10*time.Millisecond {
		t.Errorf("after Reset Next = %v", got)
	}
}

func TestConfigMode(t *testing.T) {
	tests := []struct {
		c    Config
		want serial.Mode
	}{
		{Config{Port: "x"}, serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}},
		{Config{Port: "x", Baud: 115200, DataBits: 7, Parity: "Even", StopBits: 2}, serial.Mode{BaudRate: 115200, DataBits: 7, Parity: serial.EvenParity, StopBits: serial.TwoStopBits}},
		{Config{Port: "x", Parity: "odd", StopBits: 1.5}, serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.OddParity, StopBits: serial.OnePointFiveStopBits}},
	}
	for _, tt := range tests {
		if err := tt.c.Validate("k"); err != nil {
			t.Fatal(err)
		}
		if got := *tt.c.Mode(); got != tt.want {
			t.Errorf("Mode(%+v) = %+v, want %+v", tt.c, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		c       Config
		wantErr string
	}{
		{Config{}, "pos.port: required"},
		{Config{Port: "x", Baud: -1}, "pos.baud"},
		{Config{Port: "x", DataBits: 4}, "pos.dataBits"},
		{Config{Port: "x", Parity: "maybe"}, "pos.parity"},
		{Config{Port: "x", StopBits: 3}, "pos.stopBits"},
		{Config{Port: "x", ReconnectMin: time.Second, ReconnectMax: time.Millisecond}, "pos.reconnectMin"},
	}
	for _, tt := range tests {
		if err := tt.c.Validate("pos"); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.wantErr)
		}
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(Config{Port: "/nonexistent/tty"})
	if err == nil || !strings.Contains(err.Error(), "open serial port /nonexistent/tty") {
		t.Errorf("Open = %v", err)
	}
}

// TestLinkPty runs a Link on a real pty: it comes up, goes down on unplug,
// retries with backoff, and comes back on replug, with state callbacks.
func TestLinkPty(t *testing.T) {
	s, err := sim.New(sim.Options{Mode: sim.ModeSSI})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ups, downs, opens atomic.Int32
	l := NewLink(Config{Port: s.Path(), ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond},
		slog.New(slog.DiscardHandler), func(up bool) {
			if up {
				ups.Add(1)
			} else {
				downs.Add(1)
			}
		})
	open := l.open
	l.open = func(c Config) (serial.Port, error) { opens.Add(1); return open(c) }
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ctx context.Context, p serial.Port) error {
			buf := make([]byte, 64)
			for {
				if _, err := p.Read(buf); err != nil {
					return err
				}
			}
		})
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(time.Millisecond):
			}
		}
	}
	wait("up", l.Up)
	if _, err := l.Write([]byte{0}); err != nil {
		t.Errorf("Write while up: %v", err)
	}
	if err := s.Unplug(); err != nil {
		t.Fatal(err)
	}
	wait("down", func() bool { return !l.Up() })
	if _, err := l.Write([]byte{0}); !errors.Is(err, ErrDown) {
		t.Errorf("Write while down = %v, want ErrDown", err)
	}
	time.Sleep(60 * time.Millisecond)
	if n := opens.Load(); n < 3 || n > 12 {
		t.Errorf("%d open attempts in 60ms with 5..20ms backoff", n)
	}
	if err := s.Replug(); err != nil {
		t.Fatal(err)
	}
	wait("up again", l.Up)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
	if ups.Load() != 2 || downs.Load() != 2 {
		t.Errorf("state changes: %d up, %d down; want 2 and 2", ups.Load(), downs.Load())
	}
}

package sim_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/sim"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPlay plays scripts against a real Scanner on the simulator's pty,
// through an unplug and a replug.
func TestPlay(t *testing.T) {
	script := `# a sale
ean13 4901234567894
sleep 10ms
unplug
sleep 50ms
replug
qr PG1:6BFOXN*TS0BI$ZD
bad ean8 49012347
`
	for _, mode := range []sim.Mode{sim.ModeLine, sim.ModeSSI} {
		t.Run(string(mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
			s, err := sim.New(sim.Options{Mode: mode, Framing: f})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sc, err := scanner.New(scanner.Config{Config: serialport.Config{Port: s.Path(), ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond},
				Mode: scanner.Mode(mode), Framing: f}, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			out := make(chan scan.Scan, 8)
			done := make(chan struct{})
			go func() { sc.Run(ctx, out); close(done) }()
			defer func() { cancel(); <-done }()

			var log syncBuf
			if err := s.Play(ctx, strings.NewReader(script), &log); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"4901234567894", "PG1:6BFOXN*TS0BI$ZD", "49012347"} {
				select {
				case got := <-out:
					if string(got.Data) != want {
						t.Errorf("got %q, want %q", got.Data, want)
					}
				case <-ctx.Done():
					t.Fatalf("no scan %q", want)
				}
			}
			if !strings.Contains(log.String(), "> ean13 4901234567894\n") || !strings.Contains(log.String(), "> replug\n") {
				t.Errorf("play log:\n%s", log.String())
			}
			if mode == sim.ModeSSI {
				if err := sc.Deny(ctx); err != nil {
					t.Fatal(err)
				}
				for e := range s.Feedback() { // Play has returned: events wait here
					if e.Kind == "beep" {
						if e.String() != "beep 0x11 (3 long low)" {
							t.Errorf("event %q", e)
						}
						break
					}
				}
			}
		})
	}
}

func TestPlayErrorNamesLine(t *testing.T) {
	s, err := sim.New(sim.Options{Mode: sim.ModeLine, Framing: line.Framing{Suffix: line.Bytes("\r")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Play(context.Background(), strings.NewReader("# ok\nsleep 1ms\nfly away\n"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "script line 3: unknown command \"fly\"") {
		t.Errorf("Play = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := sim.New(sim.Options{Mode: "usb"}); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("New(usb) = %v", err)
	}
	if _, err := sim.New(sim.Options{Mode: sim.ModeLine}); err == nil || !strings.Contains(err.Error(), "suffix") {
		t.Errorf("New(line without suffix) = %v", err)
	}
}

// TestDrain: bytes written before the host opens the port stay there, and
// Drain returns only once a late reader has read them all.
func TestDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sim.New(sim.Options{Mode: sim.ModeLine, Framing: line.Framing{Suffix: line.Bytes("\r")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("Drain with nothing written: %v", err)
	}
	want := bytes.Repeat([]byte("4901234567894\r"), 100)
	if err := s.Raw(want); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(ctx) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) before any reader opened the port", err)
	case <-time.After(300 * time.Millisecond):
	}
	p, err := serial.Open(s.Path(), &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadTimeout(100 * time.Millisecond)
	var got []byte
	buf := make([]byte, 512)
	for len(got) < len(want) && ctx.Err() == nil {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

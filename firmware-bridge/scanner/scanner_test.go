package scanner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/sim"
	"github.com/posguard/posguard/firmware-bridge/ssi"
	"github.com/posguard/posguard/internal/syncbuf"
)

// logBuf collects log output so tests can count what was logged.
type logBuf struct{ syncbuf.Buffer }

func (l *logBuf) count(s string) int { return strings.Count(l.String(), s) }

type rig struct {
	sim  *sim.Sim
	sc   *Scanner
	out  chan scan.Scan
	logs *logBuf
	ctx  context.Context
}

// start runs a Scanner on a fresh simulator pty.
func start(t *testing.T, opts sim.Options, cfg Config) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Config = serialport.Config{Port: s.Path(), Baud: 115200, ReconnectMin: 5 * time.Millisecond, ReconnectMax: 40 * time.Millisecond}
	cfg.Mode = Mode(opts.Mode)
	logs := &logBuf{}
	sc, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{sim: s, sc: sc, out: make(chan scan.Scan, 16), logs: logs, ctx: ctx}
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, r.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	})
	return r
}

func (r *rig) next(t *testing.T) scan.Scan {
	t.Helper()
	select {
	case s := <-r.out:
		return s
	case <-r.ctx.Done():
		t.Fatal("no scan arrived")
	}
	return scan.Scan{}
}

func (r *rig) event(t *testing.T, kind string) sim.Event {
	t.Helper()
	for {
		select {
		case e := <-r.sim.Feedback():
			if e.Kind == kind {
				return e
			}
		case <-r.ctx.Done():
			t.Fatalf("no %s event arrived", kind)
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

var scripted = []struct {
	sym  scan.Symbology
	data string
}{
	{scan.EAN13, "4901234567894"},
	{scan.EAN8, "49012347"},
	{scan.QR, "PG1:6BFOXN*TS0BI$ZD"},
	{scan.GS1128, "\x1d0104901234567894"},
}

func TestLineMode(t *testing.T) {
	for _, suffix := range []string{"CR", "LF", "CRLF", `\x03\x04`} {
		for _, withAIM := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/aim=%v", suffix, withAIM), func(t *testing.T) {
				suf, err := line.ParseBytes(suffix)
				if err != nil {
					t.Fatal(err)
				}
				f := line.Framing{Suffix: suf, AIM: withAIM}
				r := start(t, sim.Options{Mode: sim.ModeLine, Framing: f}, Config{Framing: f})
				for _, s := range scripted {
					if err := r.sim.Scan(r.ctx, s.sym, []byte(s.data)); err != nil {
						t.Fatal(err)
					}
				}
				for _, s := range scripted {
					got := r.next(t)
					if string(got.Data) != s.data || got.Symbology != s.sym {
						t.Errorf("got %q %s, want %q %s", got.Data, got.Symbology, s.data, s.sym)
					}
					if got.At.IsZero() {
						t.Error("scan without a time")
					}
				}
			})
		}
	}
}

func TestLineOverlongDropped(t *testing.T) {
	f := line.Framing{Suffix: line.Bytes("\r"), MaxFrame: 64}
	r := start(t, sim.Options{Mode: sim.ModeLine, Framing: f}, Config{Framing: f})
	if err := r.sim.WaitConnected(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Raw(bytes.Repeat([]byte("A"), 10000)); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Scan(r.ctx, scan.EAN8, []byte("49012347")); err != nil {
		t.Fatal(err)
	}
	// The overlong frame ends at the first suffix, which is the one after
	// the EAN-8: both go, and the next scan is read normally.
	if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4901234567894")); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); string(got.Data) != "4901234567894" {
		t.Errorf("got %q", got.Data)
	}
	if n := r.logs.count("frame too long"); n != 1 {
		t.Errorf("overlong frame warned %d times, want once", n)
	}
}

func TestLineFeedback(t *testing.T) {
	f := line.Framing{Suffix: line.Bytes("\r")}
	r := start(t, sim.Options{Mode: sim.ModeLine, Framing: f}, Config{Framing: f,
		Feedback: LineFeedback{Good: line.Bytes("G"), Review: line.Bytes("\x07R"), Deny: line.Bytes("\x07\x07D")}})
	if err := r.sim.WaitConnected(r.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r.ctx, "scanner up", r.sc.Up)
	for _, c := range []struct {
		fn   func(context.Context) error
		want string
	}{{r.sc.Good, "G"}, {r.sc.Review, "\x07R"}, {r.sc.Deny, "\x07\x07D"}} {
		if err := c.fn(r.ctx); err != nil {
			t.Fatal(err)
		}
		if e := r.event(t, "bytes"); string(e.Data) != c.want {
			t.Errorf("scanner got %q, want %q", e.Data, c.want)
		}
	}
}

func TestSSI(t *testing.T) {
	r := start(t, sim.Options{Mode: sim.ModeSSI, Chunk: 100, AckTimeout: 300 * time.Millisecond}, Config{})
	// Start-up: decode data packeted, ACK/NAK handshaking on.
	if e := r.event(t, "param"); !bytes.Equal(e.Data, []byte{0xFF, 0xEE, 0x01, 0x9F, 0x01}) {
		t.Errorf("PARAM_SEND data % X", e.Data)
	}

	t.Run("single packet", func(t *testing.T) {
		if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4901234567894")); err != nil {
			t.Fatal(err) // Scan returns only after the host's ACK
		}
		if got := r.next(t); string(got.Data) != "4901234567894" || got.Symbology != scan.EAN13 {
			t.Errorf("got %q %s", got.Data, got.Symbology)
		}
	})
	t.Run("multi packet", func(t *testing.T) {
		long := strings.Repeat("PG1:0123456789", 40) // 560 bytes: 6 packets of 100
		if err := r.sim.Scan(r.ctx, scan.QR, []byte(long)); err != nil {
			t.Fatal(err)
		}
		if got := r.next(t); string(got.Data) != long || got.Symbology != scan.QR {
			t.Errorf("got %d bytes %s, want %d", len(got.Data), got.Symbology, len(long))
		}
	})
	t.Run("bad checksum NAKed then retransmission accepted", func(t *testing.T) {
		if err := r.sim.ScanCorrupt(r.ctx, scan.EAN8, []byte("49012347")); err != nil {
			t.Fatal(err)
		}
		if e := r.event(t, "nak"); e.Code != ssi.NakResend {
			t.Errorf("NAK cause 0x%02X, want RESEND", e.Code)
		}
		if got := r.next(t); string(got.Data) != "49012347" || got.Symbology != scan.EAN8 {
			t.Errorf("got %q %s", got.Data, got.Symbology)
		}
		select {
		case extra := <-r.out:
			t.Errorf("extra scan %q", extra.Data)
		default:
		}
	})
	t.Run("retransmitted duplicate dropped", func(t *testing.T) {
		pk := ssi.Packet{Opcode: ssi.OpDecodeData, Data: append([]byte{ssi.CodeEAN13}, "4006381333931"...)}
		first, _ := ssi.Encode(pk)
		pk.Status = ssi.StatusRetransmit
		again, _ := ssi.Encode(pk)
		if err := r.sim.Raw(append(first, again...)); err != nil {
			t.Fatal(err)
		}
		if err := r.sim.Scan(r.ctx, scan.EAN8, []byte("96385074")); err != nil {
			t.Fatal(err)
		}
		if got := r.next(t); string(got.Data) != "4006381333931" {
			t.Errorf("got %q", got.Data)
		}
		if got := r.next(t); string(got.Data) != "96385074" {
			t.Errorf("got %q after the duplicate, want the next scan", got.Data)
		}
	})
	t.Run("garbage skipped", func(t *testing.T) {
		if err := r.sim.Raw([]byte("\x00\xff\r\nnoise\x01\x02")); err != nil {
			t.Fatal(err)
		}
		if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4006381333931")); err != nil {
			t.Fatal(err)
		}
		if got := r.next(t); string(got.Data) != "4006381333931" {
			t.Errorf("got %q", got.Data)
		}
	})
	t.Run("scan disable and enable acknowledged", func(t *testing.T) {
		if err := r.sc.SetScanning(r.ctx, false); err != nil {
			t.Fatal(err)
		}
		r.event(t, "scan-disable")
		if err := r.sc.SetScanning(r.ctx, true); err != nil {
			t.Fatal(err)
		}
		r.event(t, "scan-enable")
	})
	t.Run("feedback acknowledged", func(t *testing.T) {
		for _, c := range []struct {
			fn   func(context.Context) error
			beep byte
			led  string
		}{{r.sc.Good, BeepGood, "led-off"}, {r.sc.Review, BeepReview, "led-on"}, {r.sc.Deny, BeepDeny, "led-on"}} {
			if err := c.fn(r.ctx); err != nil {
				t.Fatal(err) // nil means the scanner ACKed
			}
			if e := r.event(t, "beep"); e.Code != c.beep {
				t.Errorf("beep 0x%02X, want 0x%02X", e.Code, c.beep)
			}
			if e := r.event(t, c.led); e.Code != LEDDecode {
				t.Errorf("%s 0x%02X", c.led, e.Code)
			}
		}
	})
}

func TestUnplugReplug(t *testing.T) {
	for _, mode := range []sim.Mode{sim.ModeLine, sim.ModeSSI} {
		t.Run(string(mode), func(t *testing.T) {
			f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
			r := start(t, sim.Options{Mode: mode, Framing: f}, Config{Framing: f})
			if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4901234567894")); err != nil {
				t.Fatal(err)
			}
			r.next(t)
			waitFor(t, r.ctx, "scanner up", r.sc.Up)
			if err := r.sim.Unplug(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, r.ctx, "scanner down", func() bool { return !r.sc.Up() })
			if err := r.sc.Good(r.ctx); err == nil {
				t.Error("feedback while unplugged succeeded")
			}
			time.Sleep(150 * time.Millisecond) // several failed reopen attempts
			if err := r.sim.Replug(); err != nil {
				t.Fatal(err)
			}
			if err := r.sim.Scan(r.ctx, scan.EAN8, []byte("49012347")); err != nil {
				t.Fatal(err)
			}
			if got := r.next(t); string(got.Data) != "49012347" {
				t.Errorf("after replug got %q", got.Data)
			}
			if n := r.logs.count("level=WARN msg=\"serial port lost"); n != 1 {
				t.Errorf("loss logged %d times, want once:\n%s", n, r.logs.String())
			}
			if n := r.logs.count("serial port unavailable"); n != 0 {
				t.Errorf("failed reopen attempts logged %d times at info or above", n)
			}
			if n := r.logs.count("serial port back"); n != 1 {
				t.Errorf("recovery logged %d times", n)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Config: serialport.Config{Port: "/dev/ttyACM0"}, Mode: ModeLine, Framing: line.Framing{Suffix: line.Bytes("\r")}}
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"ssi needs no suffix", func(c *Config) { c.Mode, c.Suffix = ModeSSI, nil }, ""},
		{"mode", func(c *Config) { c.Mode = "usb" }, "scanner.mode"},
		{"port", func(c *Config) { c.Port = "" }, "scanner.port"},
		{"parity", func(c *Config) { c.Parity = "weird" }, "scanner.parity"},
		{"data bits", func(c *Config) { c.DataBits = 9 }, "scanner.dataBits"},
		{"stop bits", func(c *Config) { c.StopBits = 3 }, "scanner.stopBits"},
		{"suffix", func(c *Config) { c.Suffix = nil }, "scanner.suffix"},
		{"retries", func(c *Config) { c.Mode = ModeSSI; c.SSI.Retries = 99 }, "scanner.ssi.retries"},
		{"inter-packet timeout", func(c *Config) { c.Mode = ModeSSI; c.SSI.InterPacketTimeout = -time.Second }, "scanner.ssi.interPacketTimeout"},
	}
	for _, tt := range tests {
		c := ok
		tt.mut(&c)
		err := c.Validate("scanner")
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestSSIFeedbackWhileAgentBusy: the agent calls Deny while it has not yet
// taken the next scan from out (out unbuffered); the ACK must still be read.
func TestSSIFeedbackWhileAgentBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sim.New(sim.Options{Mode: sim.ModeSSI})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc, err := New(Config{Config: serialport.Config{Port: s.Path()}, Mode: ModeSSI}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan scan.Scan) // unbuffered: nobody reads until Deny returns
	done := make(chan struct{})
	go func() { sc.Run(ctx, out); close(done) }()
	defer func() { cancel(); <-done }()
	for _, d := range []string{"4901234567894", "49012347"} {
		if err := s.Scan(ctx, scan.EAN13, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Deny(ctx); err != nil {
		t.Fatalf("Deny while scans wait: %v", err)
	}
	for _, want := range []string{"4901234567894", "49012347"} {
		if got := <-out; string(got.Data) != want {
			t.Errorf("got %q, want %q", got.Data, want)
		}
	}
}

// TestSSIPartialMessageDropped is issue 21's sequence over a pty: a
// multi-packet payment QR loses its last packet, and the EAN-13 scanned
// next must reach the agent as itself, not as "PG1:PARTIAL4901234200029".
func TestSSIPartialMessageDropped(t *testing.T) {
	first, _ := ssi.Encode(ssi.Packet{Opcode: ssi.OpDecodeData, Status: ssi.StatusContinued, Data: append([]byte{ssi.CodeQR}, "PG1:PARTIAL"...)})
	last, _ := ssi.Encode(ssi.Packet{Opcode: ssi.OpDecodeData, Data: append([]byte{ssi.CodeQR}, "END"...)})
	last[len(last)-1] ^= 0x5A // every transmission of the last packet arrives damaged
	tests := []struct {
		name  string
		lost  [][]byte      // what the scanner sent of the last packet
		pause time.Duration // before the EAN-13
		want  ssi.DropReason
	}{
		{"last packet never sent, EAN-13 a second later", nil, time.Second, ssi.DropTimeout},
		{"last packet given up after three NAKs, EAN-13 at once", [][]byte{last, last, last}, 0, ssi.DropNewMessage},
		{"last packet never sent, EAN-13 at once", nil, 0, ssi.DropCodeType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, sim.Options{Mode: sim.ModeSSI}, Config{})
			r.event(t, "param")
			if err := r.sim.Raw(first); err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.lost {
				if err := r.sim.Raw(b); err != nil {
					t.Fatal(err)
				}
				if e := r.event(t, "nak"); e.Code != ssi.NakResend {
					t.Fatalf("NAK cause 0x%02X", e.Code)
				}
			}
			time.Sleep(tt.pause)
			if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4901234200029")); err != nil {
				t.Fatal(err)
			}
			if got := r.next(t); string(got.Data) != "4901234200029" || got.Symbology != scan.EAN13 {
				t.Errorf("got %q %s, want the EAN-13 alone", got.Data, got.Symbology)
			}
			drops := r.sc.Drops()
			for _, reason := range ssi.DropReasons {
				want := int64(0)
				if reason == tt.want {
					want = 1
				}
				if drops[reason] != want {
					t.Errorf("drops[%s] = %d, want %d", reason, drops[reason], want)
				}
			}
			if n := r.logs.count("partial decode data dropped"); n != 1 {
				t.Errorf("drop logged %d times, want once", n)
			}
		})
	}
}

// TestSSIUnplugMidMessage: a message cut by an unplug is counted as
// dropped, and the first scan after the replug is read whole.
func TestSSIUnplugMidMessage(t *testing.T) {
	r := start(t, sim.Options{Mode: sim.ModeSSI}, Config{})
	r.event(t, "param")
	waitFor(t, r.ctx, "scanner up", r.sc.Up)
	first, _ := ssi.Encode(ssi.Packet{Opcode: ssi.OpDecodeData, Status: ssi.StatusContinued, Data: append([]byte{ssi.CodeQR}, "PG1:PARTIAL"...)})
	if err := r.sim.Raw(first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the host reads it; the scanner is unplugged before the next
	if err := r.sim.Unplug(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r.ctx, "scanner down", func() bool { return !r.sc.Up() })
	if err := r.sim.Replug(); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Scan(r.ctx, scan.EAN13, []byte("4901234200029")); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); string(got.Data) != "4901234200029" {
		t.Errorf("after replug got %q", got.Data)
	}
	if n := r.sc.Drops()[ssi.DropClosed]; n != 1 {
		t.Errorf("drops[closed] = %d, want 1", n)
	}
}

package posout

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/sim"
)

var scans = []scan.Scan{
	{Data: []byte("4901234567894"), Symbology: scan.EAN13},
	{Data: []byte("49012347"), Symbology: scan.EAN8},
	{Data: []byte("PG1:6BFOXN*TS0BI$ZD"), Symbology: scan.QR},
	{Data: []byte("\x1d0104901234567894"), Symbology: scan.GS1128},
}

type rig struct {
	pos  *POS
	far  *sim.POS
	ctx  context.Context
	done chan error
}

func start(t *testing.T, f line.Framing) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	far, err := sim.NewPOS("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Config: serialport.Config{Port: far.Path(), ReconnectMin: 5 * time.Millisecond, ReconnectMax: 40 * time.Millisecond}, Framing: f}
	p, err := New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{pos: p, far: far, ctx: ctx, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		far.Close()
	})
	if err := far.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ctx, p, true)
	return r
}

func waitUp(t *testing.T, ctx context.Context, p *POS, up bool) {
	t.Helper()
	for p.Up() != up {
		select {
		case <-ctx.Done():
			t.Fatalf("POS link never became up=%v", up)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func TestByteExact(t *testing.T) {
	tests := []struct {
		golden string
		f      line.Framing
	}{
		{"stx_aim_crlf.golden", line.Framing{Prefix: line.Bytes("\x02"), Suffix: line.Bytes("\r\n"), AIM: true}},
		{"plain_cr.golden", line.Framing{Suffix: line.Bytes("\r")}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden))
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, tt.f)
			for _, s := range scans {
				if err := r.pos.Send(s); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.far.Next(r.ctx, len(want))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("POS got %q\nwant    %q", got, want)
			}
			time.Sleep(20 * time.Millisecond)
			if extra := r.far.Take(); len(extra) > 0 {
				t.Errorf("extra bytes %q", extra)
			}
		})
	}
}

func TestReconnect(t *testing.T) {
	f := line.Framing{Suffix: line.Bytes("\r")}
	r := start(t, f)
	if err := r.far.Unplug(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r.ctx, r.pos, false)
	if err := r.pos.Send(scans[0]); !errors.Is(err, ErrDown) {
		t.Errorf("Send while unplugged = %v, want ErrDown", err)
	}
	if err := r.far.Replug(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r.ctx, r.pos, true)
	if err := r.pos.Send(scans[1]); err != nil {
		t.Fatal(err)
	}
	got, err := r.far.Next(r.ctx, len("49012347\r"))
	if err != nil || string(got) != "49012347\r" {
		t.Errorf("after replug got %q, %v", got, err)
	}
}

func TestValidate(t *testing.T) {
	c := Config{Config: serialport.Config{Port: "/dev/pts/9"}}
	if err := c.Validate("pos"); err == nil || err.Error() != "pos.suffix: must not be empty: frames are delimited by it" {
		t.Errorf("Validate = %v", err)
	}
}

package ssilink

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/ssi"
)

// wire records what the host writes, decoded, and can answer it.
type wire struct {
	mu      sync.Mutex
	sent    []ssi.Packet
	dec     *ssi.Decoder
	onWrite func(ssi.Packet)
}

func (w *wire) Write(b []byte) (int, error) {
	w.mu.Lock()
	var got []ssi.Packet
	w.dec.Feed(b, func(e ssi.Event) { got = append(got, e.Packet) })
	w.sent = append(w.sent, got...)
	w.mu.Unlock()
	for _, p := range got {
		if w.onWrite != nil {
			w.onWrite(p)
		}
	}
	return len(b), nil
}

func (w *wire) packets() []ssi.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ssi.Packet(nil), w.sent...)
}

func newHost(cfg Config) (*Host, *wire, *[]Decoded) {
	h, w, got, _ := newHostDrops(cfg)
	return h, w, got
}

func newHostDrops(cfg Config) (*Host, *wire, *[]Decoded, *[]ssi.DropReason) {
	w := &wire{dec: ssi.NewDecoder()}
	var got []Decoded
	var drops []ssi.DropReason
	h := New(w, cfg, func(d Decoded) { got = append(got, d) }, func(r ssi.DropReason) { drops = append(drops, r) }, slog.New(slog.DiscardHandler))
	return h, w, &got, &drops
}

func enc(p ssi.Packet) []byte {
	b, err := ssi.Encode(p)
	if err != nil {
		panic(err)
	}
	return b
}

func decode(status byte, data string) []byte {
	return enc(ssi.Packet{Opcode: ssi.OpDecodeData, Source: ssi.SourceDecoder, Status: status, Data: append([]byte{ssi.CodeQR}, data...)})
}

func TestFeed(t *testing.T) {
	bad := decode(0, "X")
	bad[len(bad)-1]++
	tests := []struct {
		name    string
		in      [][]byte
		want    []string
		replies []byte // opcodes the host sent back
		max     int
	}{
		{"single", [][]byte{decode(0, "PG1:A")}, []string{"PG1:A"}, []byte{ssi.OpCmdAck}, 0},
		{"multi", [][]byte{decode(ssi.StatusContinued, "PG1:"), decode(ssi.StatusContinued, "AB"), decode(0, "C")}, []string{"PG1:ABC"}, []byte{ssi.OpCmdAck, ssi.OpCmdAck, ssi.OpCmdAck}, 0},
		{"bad checksum NAKed", [][]byte{bad, decode(ssi.StatusRetransmit, "X")}, []string{"X"}, []byte{ssi.OpCmdNak, ssi.OpCmdAck}, 0},
		{"duplicate retransmission ACKed, dropped", [][]byte{decode(0, "A"), decode(ssi.StatusRetransmit, "A")}, []string{"A"}, []byte{ssi.OpCmdAck, ssi.OpCmdAck}, 0},
		{"same data again without retransmit bit is a new scan", [][]byte{decode(0, "A"), decode(0, "A")}, []string{"A", "A"}, []byte{ssi.OpCmdAck, ssi.OpCmdAck}, 0},
		{"overlong message dropped, next kept", [][]byte{decode(ssi.StatusContinued, "12345"), decode(0, "678"), decode(0, "ok")}, []string{"ok"}, []byte{ssi.OpCmdAck, ssi.OpCmdAck, ssi.OpCmdAck}, 6},
		{"other decoder packets ACKed", [][]byte{enc(ssi.Packet{Opcode: 0xF6, Data: []byte{1}})}, nil, []byte{ssi.OpCmdAck}, 0},
		{"host-sourced packets ignored", [][]byte{enc(ssi.Packet{Opcode: ssi.OpBeep, Source: ssi.SourceHost})}, nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, w, got := newHost(Config{MaxMessage: tt.max})
			now := time.Unix(100, 0)
			for _, b := range tt.in {
				if err := h.Feed(b, now); err != nil {
					t.Fatal(err)
				}
			}
			var data []string
			for _, d := range *got {
				data = append(data, string(d.Data))
				if d.CodeType != ssi.CodeQR || !d.At.Equal(now) {
					t.Errorf("decoded %+v", d)
				}
			}
			if strings.Join(data, "|") != strings.Join(tt.want, "|") {
				t.Errorf("decoded %q, want %q", data, tt.want)
			}
			var ops []byte
			for _, p := range w.packets() {
				ops = append(ops, p.Opcode)
				if p.Source != ssi.SourceHost {
					t.Errorf("host sent source 0x%02X", p.Source)
				}
			}
			if !bytes.Equal(ops, tt.replies) {
				t.Errorf("host sent % X, want % X", ops, tt.replies)
			}
		})
	}
}

func TestGapDropsPartial(t *testing.T) {
	h, _, got := newHost(Config{Gap: 50 * time.Millisecond})
	full := decode(0, "PG1:Z")
	t0 := time.Unix(100, 0)
	h.Feed(full[:4], t0)
	h.Feed(full, t0.Add(time.Second)) // the scanner's retransmission after a silence
	if len(*got) != 1 || string((*got)[0].Data) != "PG1:Z" {
		t.Errorf("got %+v", *got)
	}
}

// TestPartialMessageDropped: a multi-packet QR whose last packet the
// scanner gave up resending (three bad checksums, all NAKed) must not be
// glued to the EAN-13 scanned next, however soon it comes.
func TestPartialMessageDropped(t *testing.T) {
	bad := decode(0, "TAIL")
	bad[len(bad)-1] ^= 0x5A
	ean := enc(ssi.Packet{Opcode: ssi.OpDecodeData, Data: append([]byte{ssi.CodeEAN13}, "4901234200029"...)})
	for _, gap := range []time.Duration{10 * time.Millisecond, time.Second} {
		t.Run(gap.String(), func(t *testing.T) {
			h, w, got, drops := newHostDrops(Config{})
			t0 := time.Unix(100, 0)
			steps := [][]byte{decode(ssi.StatusContinued, "PG1:PARTIAL"), bad, bad, bad}
			for i, b := range steps {
				if err := h.Feed(b, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Feed(ean, t0.Add(3*time.Millisecond+gap)); err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 || string((*got)[0].Data) != "4901234200029" || (*got)[0].CodeType != ssi.CodeEAN13 {
				t.Errorf("decoded %+v, want the EAN-13 alone", *got)
			}
			want := ssi.DropNewMessage // the first reason that applies
			if gap > DefaultInterPacketTimeout {
				want = ssi.DropTimeout
			}
			if len(*drops) != 1 || (*drops)[0] != want {
				t.Errorf("drops %v, want [%s]", *drops, want)
			}
			var ops []byte
			for _, p := range w.packets() {
				ops = append(ops, p.Opcode)
			}
			if want := []byte{ssi.OpCmdAck, ssi.OpCmdNak, ssi.OpCmdNak, ssi.OpCmdNak, ssi.OpCmdAck}; !bytes.Equal(ops, want) {
				t.Errorf("host sent % X, want % X", ops, want)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		h, _, got, drops := newHostDrops(Config{})
		h.Feed(decode(ssi.StatusContinued, "PG1:PARTIAL"), time.Unix(100, 0))
		h.Close()
		if len(*got) != 0 || len(*drops) != 1 || (*drops)[0] != ssi.DropClosed {
			t.Errorf("decoded %v, drops %v", *got, *drops)
		}
	})
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(h *Host, p ssi.Packet, n int) // n: transmissions so far
		wantErr error
		tries   int
	}{
		{"ACK", func(h *Host, p ssi.Packet, n int) { h.Feed(enc(ssi.Packet{Opcode: ssi.OpCmdAck}), time.Now()) }, nil, 1},
		{"NAK RESEND then ACK", func(h *Host, p ssi.Packet, n int) {
			if n == 1 {
				h.Feed(enc(ssi.Packet{Opcode: ssi.OpCmdNak, Data: []byte{ssi.NakResend}}), time.Now())
			} else {
				h.Feed(enc(ssi.Packet{Opcode: ssi.OpCmdAck}), time.Now())
			}
		}, nil, 2},
		{"silence then ACK", func(h *Host, p ssi.Packet, n int) {
			if n == 2 {
				h.Feed(enc(ssi.Packet{Opcode: ssi.OpCmdAck}), time.Now())
			}
		}, nil, 2},
		{"no ACK ever", func(*Host, ssi.Packet, int) {}, ErrNoAck, 3},
		{"NAK DENIED", func(h *Host, p ssi.Packet, n int) {
			h.Feed(enc(ssi.Packet{Opcode: ssi.OpCmdNak, Data: []byte{ssi.NakDenied}}), time.Now())
		}, ErrNak, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, w, _ := newHost(Config{AckTimeout: 20 * time.Millisecond})
			// One goroutine answers, as the single reader of a port does.
			type tx struct {
				p ssi.Packet
				n int
			}
			q := make(chan tx, 8)
			defer close(q)
			go func() {
				for s := range q {
					tt.answer(h, s.p, s.n)
				}
			}()
			n := 0
			w.onWrite = func(p ssi.Packet) {
				n++
				q <- tx{p, n}
			}
			err := h.Command(context.Background(), ssi.OpBeep, []byte{0x05})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Command = %v, want %v", err, tt.wantErr)
			}
			sent := w.packets()
			if len(sent) != tt.tries {
				t.Fatalf("%d transmissions, want %d", len(sent), tt.tries)
			}
			for i, p := range sent {
				if p.Opcode != ssi.OpBeep || !bytes.Equal(p.Data, []byte{0x05}) {
					t.Errorf("sent %+v", p)
				}
				if retx := p.Status&ssi.StatusRetransmit != 0; retx != (i > 0) {
					t.Errorf("transmission %d retransmit bit %v", i, retx)
				}
			}
		})
	}
}

// Package ssilink is the host side of a Zebra SSI link: it ACKs every good
// packet from the scanner, NAKs (cause RESEND) a bad checksum, reassembles
// multi-packet decode data, drops retransmitted duplicates, and sends host
// commands, retransmitting (retransmit bit set) a bounded number of times
// when no ACK comes back. Packet encoding is package ssi's.
package ssilink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/posguard/posguard/firmware-bridge/ssi"
)

// Config tunes the link; zero values take the defaults.
type Config struct {
	// AckTimeout is how long a host command waits for CMD_ACK before it is
	// sent again. Default 250ms.
	AckTimeout time.Duration `yaml:"ackTimeout,omitempty"`
	// Retries is how many times a command is sent again after the first
	// try. Default 2 (three transmissions, as the scanner itself does).
	Retries int `yaml:"retries,omitempty"`
	// MaxMessage bounds reassembled multi-packet decode data. Default 4096.
	MaxMessage int `yaml:"maxMessage,omitempty"`
	// Gap is the silence after which a partial packet is thrown away, so a
	// truncated packet cannot swallow the retransmission. Default 100ms.
	Gap time.Duration `yaml:"gap,omitempty"`
	// InterPacketTimeout is the silence after which a partial multi-packet
	// message is thrown away, so a message whose last packet was lost
	// cannot swallow the next scan. The scanner sends each packet as soon
	// as the previous one is ACKed; raise it above the scanner's "host
	// serial response time-out" to keep messages whose ACK was lost and
	// resent late. Default 500ms.
	InterPacketTimeout time.Duration `yaml:"interPacketTimeout,omitempty"`
}

// Validate checks c; key is its configuration path.
func (c Config) Validate(key string) error {
	switch {
	case c.AckTimeout < 0:
		return fmt.Errorf("%s.ackTimeout: must be >= 0", key)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("%s.retries: must be between 0 and 10, got %d", key, c.Retries)
	case c.MaxMessage < 0:
		return fmt.Errorf("%s.maxMessage: must be >= 0", key)
	case c.Gap < 0:
		return fmt.Errorf("%s.gap: must be >= 0", key)
	case c.InterPacketTimeout < 0:
		return fmt.Errorf("%s.interPacketTimeout: must be >= 0", key)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.AckTimeout == 0 {
		c.AckTimeout = 250 * time.Millisecond
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = 4096
	}
	if c.Gap == 0 {
		c.Gap = 100 * time.Millisecond
	}
	if c.InterPacketTimeout == 0 {
		c.InterPacketTimeout = DefaultInterPacketTimeout
	}
	return c
}

// DefaultInterPacketTimeout is Config.InterPacketTimeout's default.
const DefaultInterPacketTimeout = 500 * time.Millisecond

// ErrNoAck is wrapped when a command got no CMD_ACK after all retries.
var ErrNoAck = errors.New("ssi: no ACK from scanner")

// ErrNak is wrapped when the scanner refused a command.
var ErrNak = errors.New("ssi: scanner answered NAK")

// Decoded is one complete decode from the scanner.
type Decoded struct {
	CodeType byte
	Data     []byte
	At       time.Time
}

// Host drives one open port. Feed is called by the single reader of the
// port; Command and Start may be called from other goroutines.
type Host struct {
	cfg  Config
	log  *slog.Logger
	emit func(Decoded)

	wmu sync.Mutex // one packet on the wire at a time
	w   io.Writer

	cmdMu   sync.Mutex      // one outstanding host command
	replies chan ssi.Packet // ACK/NAK for the outstanding command
	dec     *ssi.Decoder    // reader side only
	asm     *ssi.Assembler  // reader side only
	last    time.Time       // time of the last byte fed
	scratch []byte
}

// New makes a host writing to w and calling emit for every decode and
// onDrop (may be nil) for every partial message thrown away.
func New(w io.Writer, cfg Config, emit func(Decoded), onDrop func(ssi.DropReason), log *slog.Logger) *Host {
	cfg = cfg.withDefaults()
	h := &Host{cfg: cfg, log: log, emit: emit, w: w, replies: make(chan ssi.Packet, 1), dec: ssi.NewDecoder()}
	h.asm = ssi.NewAssembler(cfg.MaxMessage, cfg.InterPacketTimeout, func(r ssi.DropReason, n int) {
		log.Warn("ssi: partial decode data dropped", "reason", string(r), "bytes", n)
		if onDrop != nil {
			onDrop(r)
		}
	})
	return h
}

// Close drops a message still waiting for packets: the port is gone.
func (h *Host) Close() { h.asm.Abort(ssi.DropClosed) }

func (h *Host) send(p ssi.Packet) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	b, err := ssi.Append(h.scratch[:0], p)
	if err != nil {
		return err
	}
	h.scratch = b
	if _, err := h.w.Write(b); err != nil {
		return fmt.Errorf("write ssi 0x%02X: %w", p.Opcode, err)
	}
	return nil
}

func (h *Host) ack() error { return h.send(ssi.Packet{Opcode: ssi.OpCmdAck, Source: ssi.SourceHost}) }

func (h *Host) nak(cause byte) error {
	return h.send(ssi.Packet{Opcode: ssi.OpCmdNak, Source: ssi.SourceHost, Data: []byte{cause}})
}

// Feed consumes bytes read from the port at now. It returns the first
// write error (the port is then gone); decoding itself never fails.
func (h *Host) Feed(p []byte, now time.Time) error {
	if h.dec.Buffered() > 0 && now.Sub(h.last) > h.cfg.Gap {
		h.log.Warn("ssi: dropped a partial packet after a silence", "bytes", h.dec.Buffered())
		h.dec.Reset()
	}
	h.last = now
	h.asm.Heard(now)
	var werr error
	skipped := h.dec.Skipped
	h.dec.Feed(p, func(ev ssi.Event) {
		if err := h.handle(ev, now); err != nil && werr == nil {
			werr = err
		}
	})
	if n := h.dec.Skipped - skipped; n > 0 {
		h.log.Debug("ssi: skipped bytes that start no packet", "bytes", n)
	}
	return werr
}

func (h *Host) handle(ev ssi.Event, now time.Time) error {
	pk := ev.Packet
	if ev.Err != nil {
		h.log.Warn("ssi: bad packet, asking for a resend", "err", ev.Err)
		if pk.Opcode == ssi.OpDecodeData && pk.Source == ssi.SourceDecoder {
			h.asm.Failed()
		}
		return h.nak(ssi.NakResend)
	}
	if pk.Source != ssi.SourceDecoder {
		return nil // our own packets echoed back, or another host: not ours to answer
	}
	switch pk.Opcode {
	case ssi.OpCmdAck, ssi.OpCmdNak:
		select {
		case h.replies <- pk:
		default:
			h.log.Debug("ssi: reply with no command waiting", "opcode", pk.Opcode)
		}
		return nil
	case ssi.OpDecodeData:
		err := h.ack()
		h.decodeData(pk, now)
		return err
	default:
		// Events, revision replies and the like: acknowledged, not used.
		return h.ack()
	}
}

func (h *Host) decodeData(pk ssi.Packet, now time.Time) {
	if len(pk.Data) == 0 {
		h.log.Warn("ssi: DECODE_DATA without a code type byte")
		return
	}
	if m, ok := h.asm.Add(pk); ok {
		h.emit(Decoded{CodeType: m.CodeType, Data: m.Data, At: now})
	}
}

// Command sends a host command and waits for CMD_ACK, retransmitting with
// the retransmit bit on timeout or NAK RESEND.
func (h *Host) Command(ctx context.Context, op byte, data []byte) error {
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	select { // a late reply to an earlier command is not this one's
	case <-h.replies:
	default:
	}
	// Status 0 also makes PARAM_SEND a temporary change: the settings stored
	// in the scanner stay as the shop left them.
	status := byte(0)
	t := time.NewTimer(h.cfg.AckTimeout)
	defer t.Stop()
	for try := 0; try <= h.cfg.Retries; try++ {
		if try > 0 {
			status |= ssi.StatusRetransmit
		}
		if err := h.send(ssi.Packet{Opcode: op, Source: ssi.SourceHost, Status: status, Data: data}); err != nil {
			return err
		}
		t.Reset(h.cfg.AckTimeout)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			continue
		case r := <-h.replies:
			if r.Opcode == ssi.OpCmdAck {
				return nil
			}
			cause := byte(0)
			if len(r.Data) > 0 {
				cause = r.Data[0]
			}
			if cause != ssi.NakResend {
				return fmt.Errorf("%w to opcode 0x%02X, cause 0x%02X", ErrNak, op, cause)
			}
		}
	}
	return fmt.Errorf("%w to opcode 0x%02X after %d tries", ErrNoAck, op, h.cfg.Retries+1)
}

// Start puts the scanner in the mode the link relies on: decode data in
// DECODE_DATA packets, with ACK/NAK handshaking.
func (h *Host) Start(ctx context.Context) error {
	return h.Command(ctx, ssi.OpParamSend, []byte{ssi.BeepNone,
		ssi.ParamDecodeDataPacketed, 0x01,
		ssi.ParamSoftwareHandshaking, 0x01})
}

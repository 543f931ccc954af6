// Package sim is a virtual barcode scanner on a pseudo-terminal, in line or
// Zebra SSI mode, and a virtual POS port: what developers, demos and tests
// use instead of hardware. The host opens Path() as a serial port.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/ssi"
)

// Mode is the protocol the simulated scanner speaks.
type Mode string

const (
	ModeLine Mode = "line"
	ModeSSI  Mode = "ssi"
)

// Options configure a simulator.
type Options struct {
	Mode Mode
	// Framing is the line-mode framing (ignored in SSI mode).
	Framing line.Framing
	// Link is the path of the symlink to the pty slave; empty makes one in
	// a private temporary directory.
	Link string
	// AckTimeout is how long an SSI packet waits for the host's ACK before
	// it is sent again (twice at most, as a scanner does). Default 500ms.
	AckTimeout time.Duration
	// Chunk is the most decode data per SSI packet; longer data goes as a
	// multi-packet message. Default and maximum 250.
	Chunk int
	Log   *slog.Logger
}

// Event is something the host sent the simulated scanner.
type Event struct {
	// Kind: beep, led-on, led-off, scan-enable, scan-disable, param,
	// command (other opcodes), bad-packet (checksum failed, NAKed),
	// nak (the host NAKed our packet; Code is the cause), bytes (line
	// mode: raw bytes).
	Kind string
	Code byte // beep code, LED selection, opcode (command)
	Data []byte
}

func (e Event) String() string {
	switch e.Kind {
	case "beep":
		return fmt.Sprintf("beep 0x%02X (%s)", e.Code, beepName(e.Code))
	case "led-on", "led-off", "nak":
		return fmt.Sprintf("%s 0x%02X", e.Kind, e.Code)
	case "command":
		return fmt.Sprintf("command 0x%02X % X", e.Code, e.Data)
	case "param", "bad-packet":
		return fmt.Sprintf("%s % X", e.Kind, e.Data)
	case "bytes":
		return fmt.Sprintf("bytes %q", e.Data)
	}
	return e.Kind
}

func beepName(c byte) string {
	names := [...]string{"1 short high", "2 short high", "3 short high", "4 short high", "5 short high",
		"1 short low", "2 short low", "3 short low", "4 short low", "5 short low",
		"1 long high", "2 long high", "3 long high", "4 long high", "5 long high",
		"1 long low", "2 long low", "3 long low", "4 long low", "5 long low",
		"fast warble", "slow warble", "high-low", "low-high", "high-low-high", "low-high-low"}
	if int(c) < len(names) {
		return names[c]
	}
	return "unknown"
}

// Sim is one simulated scanner.
type Sim struct {
	opts    Options
	port    *port
	cleanup func()
	events  chan Event

	sendMu  sync.Mutex // one scan at a time
	replies chan ssi.Packet
	dec     *ssi.Decoder // reader goroutine only
}

// ErrNoAck is returned when the host never acknowledged an SSI packet.
var ErrNoAck = errors.New("sim: host sent no ACK")

// New creates the pty and its link.
func New(opts Options) (*Sim, error) {
	if opts.Mode != ModeLine && opts.Mode != ModeSSI {
		return nil, fmt.Errorf("sim: mode must be line or ssi, got %q", opts.Mode)
	}
	if opts.Mode == ModeLine {
		if err := opts.Framing.Validate("framing"); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 500 * time.Millisecond
	}
	if opts.Chunk <= 0 || opts.Chunk > ssi.MaxData-1 {
		opts.Chunk = ssi.MaxData - 1
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{opts: opts, events: make(chan Event, 256), replies: make(chan ssi.Packet, 4), dec: ssi.NewDecoder(), cleanup: func() {}}
	if opts.Link == "" {
		link, cleanup, err := tempLink("scanner")
		if err != nil {
			return nil, err
		}
		s.opts.Link, s.cleanup = link, cleanup
	}
	p, err := newPort(s.opts.Link, s.receive)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.port = p
	return s, nil
}

// Path is the stable path the host opens (a symlink to the current pty).
func (s *Sim) Path() string { return s.opts.Link }

// Device is the current pty slave, empty while unplugged.
func (s *Sim) Device() string { return s.port.slave() }

// Feedback delivers what the host sent. Events are dropped when nobody
// reads and 256 are waiting.
func (s *Sim) Feedback() <-chan Event { return s.events }

// Connected reports whether a host has the port open.
func (s *Sim) Connected() bool { return s.port.connected() }

// WaitConnected waits until a host opens the port.
func (s *Sim) WaitConnected(ctx context.Context) error { return s.port.waitConnected(ctx) }

// Unplug makes the port vanish as a USB unplug does.
func (s *Sim) Unplug() error {
	err := s.port.unplug()
	s.dec.Reset() // the reader has stopped
	return err
}

// Drain waits until a host has opened the port and read everything the
// simulator wrote to it, so closing afterwards loses nothing. It returns at
// once when nothing was written.
func (s *Sim) Drain(ctx context.Context) error { return s.port.drain(ctx) }

// Replug brings the port back at the same path.
func (s *Sim) Replug() error { return s.port.plug() }

// Close unplugs and removes what New created.
func (s *Sim) Close() error {
	err := s.port.unplug()
	s.cleanup()
	return err
}

// Raw writes bytes as they are, without framing.
func (s *Sim) Raw(b []byte) error { return s.port.write(b) }

// Scan sends one barcode once the host has the port open: a line frame,
// or DECODE_DATA packets each waiting for the host's ACK.
func (s *Sim) Scan(ctx context.Context, sym scan.Symbology, data []byte) error {
	return s.scan(ctx, sym, data, false)
}

// ScanCorrupt is Scan with the first SSI packet's first transmission
// carrying a wrong checksum, to exercise the host's NAK and the
// retransmission. In line mode it is Scan.
func (s *Sim) ScanCorrupt(ctx context.Context, sym scan.Symbology, data []byte) error {
	return s.scan(ctx, sym, data, true)
}

func (s *Sim) scan(ctx context.Context, sym scan.Symbology, data []byte, corrupt bool) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.port.waitConnected(ctx); err != nil {
		return err
	}
	if s.opts.Mode == ModeLine {
		return s.port.write(s.opts.Framing.Append(nil, scan.Scan{Data: data, Symbology: sym}))
	}
	code := ssi.CodeType(sym)
	for off := 0; off == 0 || off < len(data); off += s.opts.Chunk {
		end := min(off+s.opts.Chunk, len(data))
		status := byte(0)
		if end < len(data) {
			status = ssi.StatusContinued
		}
		pk := ssi.Packet{Opcode: ssi.OpDecodeData, Source: ssi.SourceDecoder, Status: status,
			Data: append([]byte{code}, data[off:end]...)}
		if err := s.sendPacket(ctx, pk, corrupt && off == 0); err != nil {
			return err
		}
	}
	return nil
}

// sendPacket sends pk and waits for CMD_ACK, sending again (retransmit
// bit set) on timeout or NAK RESEND, at most three transmissions.
func (s *Sim) sendPacket(ctx context.Context, pk ssi.Packet, corrupt bool) error {
	drain(s.replies)
	for try := 0; try < 3; try++ {
		if try > 0 {
			pk.Status |= ssi.StatusRetransmit
		}
		b, err := ssi.Encode(pk)
		if err != nil {
			return err
		}
		if corrupt && try == 0 {
			b[len(b)-1] ^= 0x5A
		}
		if err := s.port.write(b); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.opts.AckTimeout):
			s.opts.Log.Debug("sim: no ACK, sending again", "try", try+1)
		case r := <-s.replies:
			if r.Opcode == ssi.OpCmdAck {
				return nil
			}
			if len(r.Data) == 0 || r.Data[0] != ssi.NakResend {
				return fmt.Errorf("sim: host refused DECODE_DATA with NAK % X", r.Data)
			}
		}
	}
	return ErrNoAck
}

// drain empties c of replies to earlier packets.
func drain(c chan ssi.Packet) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func (s *Sim) emit(e Event) {
	select {
	case s.events <- e:
	default:
	}
}

// receive handles bytes from the host (reader goroutine).
func (s *Sim) receive(b []byte) {
	if s.opts.Mode == ModeLine {
		s.emit(Event{Kind: "bytes", Data: b})
		return
	}
	s.dec.Feed(b, func(ev ssi.Event) {
		pk := ev.Packet
		if ev.Err != nil {
			s.emit(Event{Kind: "bad-packet", Code: pk.Opcode, Data: pk.Data})
			s.reply(ssi.OpCmdNak, ssi.NakResend)
			return
		}
		if pk.Source != ssi.SourceHost {
			return
		}
		var code byte
		if len(pk.Data) > 0 {
			code = pk.Data[0]
		}
		switch pk.Opcode {
		case ssi.OpCmdAck, ssi.OpCmdNak:
			if pk.Opcode == ssi.OpCmdNak {
				s.emit(Event{Kind: "nak", Code: code})
			}
			select {
			case s.replies <- pk:
			default:
			}
			return
		case ssi.OpBeep:
			s.emit(Event{Kind: "beep", Code: code})
		case ssi.OpLEDOn:
			s.emit(Event{Kind: "led-on", Code: code})
		case ssi.OpLEDOff:
			s.emit(Event{Kind: "led-off", Code: code})
		case ssi.OpScanEnable:
			s.emit(Event{Kind: "scan-enable"})
		case ssi.OpScanDisable:
			s.emit(Event{Kind: "scan-disable"})
		case ssi.OpParamSend:
			s.emit(Event{Kind: "param", Data: pk.Data})
		default:
			s.emit(Event{Kind: "command", Code: pk.Opcode, Data: pk.Data})
		}
		s.reply(ssi.OpCmdAck)
	})
}

func (s *Sim) reply(op byte, data ...byte) {
	b, _ := ssi.Encode(ssi.Packet{Opcode: op, Source: ssi.SourceDecoder, Data: data})
	if err := s.port.write(b); err != nil {
		s.opts.Log.Debug("sim: reply not sent", "err", err)
	}
}

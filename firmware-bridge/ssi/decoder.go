package ssi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Event is what the decoder found in the byte stream: a good packet, or a
// plausible packet whose checksum failed (the link answers CMD_NAK RESEND).
type Event struct {
	Packet Packet
	// Err is non-nil for a rejected packet: ErrChecksum wrapped with the
	// detail. Packet then holds the header fields read.
	Err error
}

// ErrChecksum is wrapped by the Err of a packet whose checksum failed.
var ErrChecksum = errors.New("ssi: bad checksum")

// Decoder cuts a byte stream into packets. It buffers at most one packet
// (MaxPacket bytes) and skips bytes that cannot start a packet; the bytes it
// skipped are counted in Skipped.
type Decoder struct {
	buf     []byte
	Skipped int
}

// NewDecoder returns an empty decoder.
func NewDecoder() *Decoder { return &Decoder{buf: make([]byte, 0, 2*MaxPacket)} }

// Buffered is the number of bytes held for an incomplete packet.
func (d *Decoder) Buffered() int { return len(d.buf) }

// Reset drops a partial packet (after a gap on the line or a reopen).
func (d *Decoder) Reset() { d.buf = d.buf[:0] }

// knownOpcode lists the opcodes a host or decoder sends; a length byte
// followed by anything else is treated as line noise.
func knownOpcode(op byte) bool {
	switch op {
	case OpParamSend, OpCmdAck, OpCmdNak, OpBeep, OpLEDOn, OpLEDOff,
		OpScanEnable, OpScanDisable, OpDecodeData,
		0xA3, 0xA4, 0xC4, 0xC5, 0xC7, 0xC8, 0xD2, 0xD3, 0xD4, 0xE4, 0xE5, 0xEB, 0xF6, 0x80:
		return true
	}
	return false
}

// plausible reports whether b (at least the 4 header bytes) can start a
// packet.
func plausible(b []byte) bool {
	return b[0] >= HeaderLen && knownOpcode(b[1]) && (b[2] == SourceDecoder || b[2] == SourceHost) && b[3]&0xF4 == 0
}

// plausiblePrefix is plausible for fewer than HeaderLen bytes.
func plausiblePrefix(b []byte) bool {
	return b[0] >= HeaderLen && (len(b) < 2 || knownOpcode(b[1])) && (len(b) < 3 || b[2] == SourceDecoder || b[2] == SourceHost)
}

// Feed consumes p and calls emit for every packet or checksum failure
// completed, in order. Data slices are copies.
func (d *Decoder) Feed(p []byte, emit func(Event)) {
	for len(p) > 0 {
		n := min(len(p), cap(d.buf)-len(d.buf))
		d.buf = append(d.buf, p[:n]...)
		p = p[n:]
		d.drain(emit)
	}
}

func (d *Decoder) drain(emit func(Event)) {
	i := 0
	for {
		rest := d.buf[i:]
		if len(rest) < HeaderLen {
			// A partial header is kept only if its known bytes could start one.
			if len(rest) > 0 && !plausiblePrefix(rest) {
				i++
				d.Skipped++
				continue
			}
			break
		}
		if !plausible(rest) {
			i++
			d.Skipped++
			continue
		}
		total := int(rest[0]) + 2
		if len(rest) < total {
			break
		}
		body := rest[:rest[0]]
		want := Checksum(body)
		got := binary.BigEndian.Uint16(rest[rest[0]:total])
		pk := Packet{Opcode: body[1], Source: body[2], Status: body[3]}
		if got != want {
			pk.Data = append([]byte(nil), body[HeaderLen:]...)
			emit(Event{Packet: pk, Err: fmt.Errorf("%w: opcode 0x%02X length %d: got 0x%04X, want 0x%04X", ErrChecksum, pk.Opcode, body[0], got, want)})
		} else {
			pk.Data = append([]byte(nil), body[HeaderLen:]...)
			emit(Event{Packet: pk})
		}
		i += total
	}
	n := copy(d.buf, d.buf[i:])
	d.buf = d.buf[:n]
}

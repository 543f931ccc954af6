package ssi

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzSSIDecoder: any byte stream, cut anywhere, must decode without
// panic, with bounded buffering, and every good packet it reports must
// re-encode to bytes whose checksum holds. The DECODE_DATA packets then go
// through an Assembler, the second part of the stream cut*10ms after the
// first: every message it completes is made of packets of its own code
// type only, ends with the packet that completed it, and fits the limit.
func FuzzSSIDecoder(f *testing.F) {
	f.Add([]byte{0x12, 0xF3, 0x00, 0x00, 0x0B, '4', '9', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '4', 0xFC, 0x42}, uint8(7))
	f.Add([]byte{0x04, 0xD0, 0x00, 0x00, 0xFF, 0x2C, 0x05, 0xD1, 0x04, 0x00, 0x01, 0xFF, 0x25}, uint8(0))
	f.Add([]byte{0xFF, 0xF3, 0x00, 0x00}, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		const limit = 64
		d := NewDecoder()
		a := NewAssembler(limit, 100*time.Millisecond, func(r DropReason, n int) {
			if r == "" || n < 0 {
				t.Fatalf("drop %q of %d bytes", r, n)
			}
		})
		var sameCode = map[byte][]byte{} // data of the packets since the last message, by code type
		c := min(int(cut), len(in))
		emit := func(e Event) {
			if e.Err != nil {
				if e.Err.Error() == "" {
					t.Fatal("rejection without a reason")
				}
				if e.Packet.Opcode == OpDecodeData {
					a.Failed()
				}
				return
			}
			b, err := Encode(e.Packet)
			if err != nil {
				t.Fatalf("decoded packet does not encode: %v", err)
			}
			if Checksum(b[:len(b)-2]) != binary.BigEndian.Uint16(b[len(b)-2:]) || !bytes.Contains(in, b) {
				t.Fatalf("packet % X not in input", b)
			}
			pk := e.Packet
			if pk.Opcode != OpDecodeData || len(pk.Data) == 0 {
				return
			}
			sameCode[pk.Data[0]] = append(sameCode[pk.Data[0]], pk.Data[1:]...)
			m, ok := a.Add(pk)
			if !ok {
				return
			}
			switch {
			case len(m.Data) == 0 || len(m.Data) > limit:
				t.Fatalf("message of %d bytes, limit %d", len(m.Data), limit)
			case m.CodeType != pk.Data[0] || !bytes.HasSuffix(m.Data, pk.Data[1:]):
				t.Fatalf("message %02X %q does not end with the packet that completed it", m.CodeType, m.Data)
			case !bytes.Contains(sameCode[m.CodeType], m.Data):
				t.Fatalf("message %02X %q mixes in data of other code types", m.CodeType, m.Data)
			}
			clear(sameCode)
		}
		t0 := time.Unix(0, 0)
		a.Heard(t0)
		d.Feed(in[:c], emit)
		a.Heard(t0.Add(time.Duration(cut) * 10 * time.Millisecond))
		d.Feed(in[c:], emit)
		if d.Buffered() > MaxPacket {
			t.Fatalf("buffered %d bytes", d.Buffered())
		}
	})
}

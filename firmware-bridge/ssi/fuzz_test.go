package ssi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzSSIDecoder: any byte stream, cut anywhere, must decode without
// panic, with bounded buffering, and every good packet it reports must
// re-encode to bytes whose checksum holds.
func FuzzSSIDecoder(f *testing.F) {
	f.Add([]byte{0x12, 0xF3, 0x00, 0x00, 0x0B, '4', '9', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '4', 0xFC, 0x42}, uint8(7))
	f.Add([]byte{0x04, 0xD0, 0x00, 0x00, 0xFF, 0x2C, 0x05, 0xD1, 0x04, 0x00, 0x01, 0xFF, 0x25}, uint8(0))
	f.Add([]byte{0xFF, 0xF3, 0x00, 0x00}, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		d := NewDecoder()
		c := min(int(cut), len(in))
		emit := func(e Event) {
			if e.Err != nil {
				if e.Err.Error() == "" {
					t.Fatal("rejection without a reason")
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
		}
		d.Feed(in[:c], emit)
		d.Feed(in[c:], emit)
		if d.Buffered() > MaxPacket {
			t.Fatalf("buffered %d bytes", d.Buffered())
		}
	})
}

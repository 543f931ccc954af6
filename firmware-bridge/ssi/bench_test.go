package ssi

import "testing"

// BenchmarkDecode is the decoder's cost per EAN-13 DECODE_DATA packet.
func BenchmarkDecode(b *testing.B) {
	pk, _ := Encode(Packet{Opcode: OpDecodeData, Data: append([]byte{CodeEAN13}, "4901234567894"...)})
	d := NewDecoder()
	n := 0
	b.SetBytes(int64(len(pk)))
	b.ReportAllocs()
	for b.Loop() {
		d.Feed(pk, func(Event) { n++ })
	}
	if n != b.N {
		b.Fatalf("%d packets from %d", n, b.N)
	}
}

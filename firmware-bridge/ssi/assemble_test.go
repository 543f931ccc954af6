package ssi

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// step is one thing the line did at ms after the start: a good DECODE_DATA
// packet, or (fail) one whose checksum failed.
type step struct {
	ms     int
	fail   bool
	status byte
	code   byte
	data   string
}

func TestAssembler(t *testing.T) {
	const (
		cont = StatusContinued
		retx = StatusRetransmit
	)
	tests := []struct {
		name  string
		steps []step
		want  []string // code:data of each message
		drops string   // reasons, in order
	}{
		{"single", []step{{0, false, 0, CodeEAN13, "4901234200029"}}, []string{"0B:4901234200029"}, ""},
		{"multi", []step{{0, false, cont, CodeQR, "PG1:AB"}, {20, false, cont, CodeQR, "CD"}, {40, false, 0, CodeQR, "E"}},
			[]string{"1C:PG1:ABCDE"}, ""},
		{"issue 21: last packet lost, EAN-13 a second later", []step{
			{0, false, cont, CodeQR, "PG1:PARTIAL"},
			{1000, false, 0, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029"}, "timeout"},
		{"last packet abandoned after NAKs, next scan of another type at once", []step{
			{0, false, cont, CodeQR, "PG1:PARTIAL"},
			{10, true, 0, 0, ""}, {20, true, 0, 0, ""}, {30, true, 0, 0, ""},
			{40, false, 0, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029"}, "new_message"},
		{"barcode type changes within the gap", []step{
			{0, false, cont, CodeQR, "PG1:PARTIAL"},
			{40, false, 0, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029"}, "code_type"},
		{"failed packet abandoned, a new QR starts at once", []step{
			{0, false, cont, CodeQR, "PG1:OLD"},
			{10, true, 0, 0, ""},
			{20, false, 0, CodeQR, "PG1:NEW"}},
			[]string{"1C:PG1:NEW"}, "new_message"},
		{"failed packet resent", []step{
			{0, false, cont, CodeQR, "PG1:AB"},
			{10, true, 0, 0, ""},
			{20, false, retx, CodeQR, "CD"}},
			[]string{"1C:PG1:ABCD"}, ""},
		{"lost ACK: duplicate within the gap ignored", []step{
			{0, false, cont, CodeQR, "PG1:AB"},
			{100, false, cont | retx, CodeQR, "PG1:AB"},
			{110, false, 0, CodeQR, "CD"}},
			[]string{"1C:PG1:ABCD"}, ""},
		{"lost ACK resent after the gap: the tail is no scan", []step{
			{0, false, cont, CodeQR, "PG1:AB"},
			{2000, false, cont | retx, CodeQR, "PG1:AB"},
			{2010, false, cont, CodeQR, "CD"},
			{2020, false, 0, CodeQR, "EF"},
			{3000, false, 0, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029"}, "timeout"},
		{"same item twice, the second resent after a bad checksum", []step{
			{0, false, 0, CodeEAN13, "4901234200029"},
			{500, true, 0, 0, ""},
			{510, false, retx, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029", "0B:4901234200029"}, ""},
		{"too long, next kept", []step{
			{0, false, cont, CodeQR, "0123456789"},
			{10, false, cont, CodeQR, "0123456789"},
			{20, false, 0, CodeQR, "0"},
			{30, false, 0, CodeQR, "ok"}},
			[]string{"1C:ok"}, "too_long"},
		{"timeout while skipping a too-long message is no second drop", []step{
			{0, false, cont, CodeQR, strings.Repeat("x", 21)},
			{1000, false, 0, CodeEAN13, "4901234200029"}},
			[]string{"0B:4901234200029"}, "too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var drops []string
			a := NewAssembler(20, 500*time.Millisecond, func(r DropReason, n int) { drops = append(drops, string(r)) })
			t0 := time.Unix(1000, 0)
			var got []string
			for _, s := range tt.steps {
				a.Heard(t0.Add(time.Duration(s.ms) * time.Millisecond))
				if s.fail {
					a.Failed()
					continue
				}
				if m, ok := a.Add(Packet{Opcode: OpDecodeData, Status: s.status, Data: append([]byte{s.code}, s.data...)}); ok {
					got = append(got, fmt.Sprintf("%02X:%s", m.CodeType, m.Data))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("messages %q, want %q", got, tt.want)
			}
			if strings.Join(drops, ",") != tt.drops {
				t.Errorf("drops %q, want %q", drops, tt.drops)
			}
			if a.Pending() {
				t.Error("a message is still pending")
			}
		})
	}
}

func TestAssemblerAbort(t *testing.T) {
	var got []DropReason
	a := NewAssembler(100, time.Second, func(r DropReason, n int) {
		if n != 6 {
			t.Errorf("dropped %d bytes, want 6", n)
		}
		got = append(got, r)
	})
	a.Abort(DropClosed) // nothing pending: nothing to count
	a.Add(Packet{Opcode: OpDecodeData, Status: StatusContinued, Data: []byte("\x1cPG1:AB")})
	a.Abort(DropClosed)
	if len(got) != 1 || got[0] != DropClosed || a.Pending() {
		t.Errorf("drops %v, pending %v", got, a.Pending())
	}
}

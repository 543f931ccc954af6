package ssi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

// readGolden reads a testdata/golden/*.hex file: '#' lines are comments
// (they carry the checksum arithmetic done by hand), the rest is hex.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	var h strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "#") {
			h.WriteString(strings.ReplaceAll(l, " ", ""))
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func TestGoldenFrames(t *testing.T) {
	tests := []struct {
		file string
		p    Packet
	}{
		{"decode_data_ean13.hex", Packet{Opcode: OpDecodeData, Source: SourceDecoder, Data: append([]byte{CodeEAN13}, "4901234567894"...)}},
		{"cmd_ack_host.hex", Packet{Opcode: OpCmdAck, Source: SourceHost}},
		{"cmd_ack_decoder.hex", Packet{Opcode: OpCmdAck, Source: SourceDecoder}},
		{"cmd_nak_resend_host.hex", Packet{Opcode: OpCmdNak, Source: SourceHost, Data: []byte{NakResend}}},
		{"beep_host.hex", Packet{Opcode: OpBeep, Source: SourceHost, Data: []byte{0x00}}},
		{"param_send_host.hex", Packet{Opcode: OpParamSend, Source: SourceHost, Data: []byte{BeepNone, ParamDecodeDataPacketed, 1, ParamSoftwareHandshaking, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want := readGolden(t, tt.file)
			got, err := Encode(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode = % X\nwant    % X", got, want)
			}
			var evs []Event
			NewDecoder().Feed(want, func(e Event) { evs = append(evs, e) })
			if len(evs) != 1 || evs[0].Err != nil {
				t.Fatalf("decode: %+v", evs)
			}
			d := evs[0].Packet
			if d.Opcode != tt.p.Opcode || d.Source != tt.p.Source || d.Status != tt.p.Status || !bytes.Equal(d.Data, tt.p.Data) {
				t.Errorf("decoded %+v, want %+v", d, tt.p)
			}
		})
	}
}

func TestEncodeTooLong(t *testing.T) {
	if _, err := Encode(Packet{Opcode: OpDecodeData, Data: make([]byte, MaxData+1)}); !errors.Is(err, ErrTooLong) {
		t.Errorf("err = %v, want ErrTooLong", err)
	}
	b, err := Encode(Packet{Opcode: OpDecodeData, Data: make([]byte, MaxData)})
	if err != nil || len(b) != MaxPacket || b[0] != 0xFF {
		t.Errorf("max packet: len %d, err %v", len(b), err)
	}
}

func TestDecoderStream(t *testing.T) {
	ean := readGolden(t, "decode_data_ean13.hex")
	ack := readGolden(t, "cmd_ack_decoder.hex")
	bad := bytes.Clone(ean)
	bad[len(bad)-1] ^= 0xFF
	tests := []struct {
		name    string
		in      [][]byte
		ops     []byte // opcodes of good packets, in order
		bad     int
		skipped int
	}{
		{"one", [][]byte{ean}, []byte{OpDecodeData}, 0, 0},
		{"byte by byte", split(append(bytes.Clone(ean), ack...), 1), []byte{OpDecodeData, OpCmdAck}, 0, 0},
		{"garbage before", [][]byte{{0x00, 0xFF, 0x41, 0x02}, ean}, []byte{OpDecodeData}, 0, 4},
		{"bad checksum then good", [][]byte{bad, ean}, []byte{OpDecodeData}, 1, 0},
		{"noise between", [][]byte{ack, []byte("\r\nhello"), ack}, []byte{OpCmdAck, OpCmdAck}, 0, 7},
		{"partial", [][]byte{ean[:10]}, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder()
			var ops []byte
			nbad := 0
			for _, c := range tt.in {
				d.Feed(c, func(e Event) {
					if e.Err != nil {
						if !errors.Is(e.Err, ErrChecksum) || !strings.Contains(e.Err.Error(), "want 0x") {
							t.Errorf("error %v does not say what was wrong", e.Err)
						}
						nbad++
						return
					}
					ops = append(ops, e.Packet.Opcode)
				})
			}
			if !bytes.Equal(ops, tt.ops) || nbad != tt.bad || d.Skipped != tt.skipped {
				t.Errorf("ops % X bad %d skipped %d; want % X bad %d skipped %d", ops, nbad, d.Skipped, tt.ops, tt.bad, tt.skipped)
			}
		})
	}
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

func TestSymbology(t *testing.T) {
	tests := []struct {
		code byte
		want scan.Symbology
	}{
		{CodeEAN13, scan.EAN13}, {0x4B, scan.EAN13}, {0x8B, scan.EAN13}, {CodeEAN8, scan.EAN8},
		{CodeCode128, scan.Code128}, {CodeGS1128, scan.GS1128}, {CodeQR, scan.QR},
		{CodeGS1DM, scan.DataMatrix}, {0x77, scan.Unknown},
	}
	for _, tt := range tests {
		if got := Symbology(tt.code); got != tt.want {
			t.Errorf("Symbology(0x%02X) = %s, want %s", tt.code, got, tt.want)
		}
	}
	for _, s := range []scan.Symbology{scan.EAN13, scan.EAN8, scan.UPCA, scan.Code128, scan.GS1128, scan.QR, scan.DataMatrix, scan.ITF14} {
		if Symbology(CodeType(s)) != s {
			t.Errorf("round trip of %s via 0x%02X", s, CodeType(s))
		}
	}
}

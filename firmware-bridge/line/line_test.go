package line

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/posguard/posguard/firmware-bridge/scan"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"CR", "\r", ""},
		{"lf", "\n", ""},
		{"CRLF", "\r\n", ""},
		{"NONE", "", ""},
		{"0x0d0a", "\r\n", ""},
		{"hex:02", "\x02", ""},
		{`\r\n`, "\r\n", ""},
		{`\x07\x07`, "\a\a", ""},
		{"END", "END", ""},
		{"0xZZ", "", "bad hex"},
		{`\q`, "", "not a name"},
		{`a"b`, "", "quotes"},
		// Quotes and backslashes next to each other print back as \x22.
		{"hex:22", `"`, ""},
		{"hex:5c22", `\"`, ""},
		{"hex:5c5c22", `\\"`, ""},
		{"hex:225c", `"\`, ""},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBytes(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ParseBytes(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		back, err := ParseBytes(got.String())
		if err != nil || !bytes.Equal(back, got) {
			t.Errorf("ParseBytes(%q.String()=%q) = %q, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestFramingYAML(t *testing.T) {
	var f Framing
	src := "prefix: STX\nsuffix: CRLF\naim: true\nmaxFrame: 100\n"
	if err := yaml.Unmarshal([]byte(src), &f); err != nil {
		t.Fatal(err)
	}
	if string(f.Prefix) != "\x02" || string(f.Suffix) != "\r\n" || !f.AIM || f.MaxFrame != 100 {
		t.Fatalf("decoded %+v", f)
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != src {
		t.Errorf("marshal = %q, want %q", out, src)
	}
	err = yaml.Unmarshal([]byte("suffix: 0xZZ\n"), &f)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad suffix error = %v, want one naming line 1", err)
	}
}

func TestFramingValidate(t *testing.T) {
	tests := []struct {
		f       Framing
		wantErr string
	}{
		{Framing{Suffix: Bytes("\r")}, ""},
		{Framing{}, "scanner.suffix: must not be empty"},
		{Framing{Suffix: Bytes("\r"), MaxFrame: -1}, "scanner.maxFrame"},
	}
	for _, tt := range tests {
		err := tt.f.Validate("scanner")
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.f, err, tt.wantErr)
		}
	}
}

type got struct {
	scans   []scan.Scan
	rejects []error
}

func feed(f Framing, chunks ...string) got {
	var g got
	fr := NewFramer(f, func(s scan.Scan) { g.scans = append(g.scans, s) }, func(err error) { g.rejects = append(g.rejects, err) })
	for _, c := range chunks {
		fr.Feed([]byte(c), time.Unix(1, 0))
	}
	return g
}

func TestFramer(t *testing.T) {
	type want struct {
		data string
		sym  scan.Symbology
	}
	tests := []struct {
		name    string
		f       Framing
		chunks  []string
		want    []want
		rejects int
	}{
		{"CR", Framing{Suffix: Bytes("\r")}, []string{"4901234567894\r"}, []want{{"4901234567894", scan.EAN13}}, 0},
		{"LF", Framing{Suffix: Bytes("\n")}, []string{"49012347\nPG1:ABC\n"}, []want{{"49012347", scan.EAN8}, {"PG1:ABC", scan.QR}}, 0},
		{"CRLF split", Framing{Suffix: Bytes("\r\n")}, []string{"4901234567894\r", "\n49012", "347\r\n"}, []want{{"4901234567894", scan.EAN13}, {"49012347", scan.EAN8}}, 0},
		{"custom suffix and prefix", Framing{Prefix: Bytes("\x02"), Suffix: Bytes("\x03\x04")}, []string{"\x024901234567894\x03", "\x04"}, []want{{"4901234567894", scan.EAN13}}, 0},
		{"AIM", Framing{Suffix: Bytes("\r"), AIM: true}, []string{"]E04901234567894\r]Q1PG1:X\r]C1\x1d0104901234567894\r"},
			[]want{{"4901234567894", scan.EAN13}, {"PG1:X", scan.QR}, {"\x1d0104901234567894", scan.GS1128}}, 0},
		{"AIM ]E0 with UPC-A and EAN-8 lengths", Framing{Suffix: Bytes("\r"), AIM: true}, []string{"]E0036000291452\r]E049012347\r"},
			[]want{{"036000291452", scan.UPCA}, {"49012347", scan.EAN8}}, 0},
		{"AIM says QR though digits", Framing{Suffix: Bytes("\r"), AIM: true}, []string{"]Q14901234567894\r"}, []want{{"4901234567894", scan.QR}}, 0},
		{"AIM expected but absent: inferred", Framing{Suffix: Bytes("\r"), AIM: true}, []string{"4901234567894\r"}, []want{{"4901234567894", scan.EAN13}}, 0},
		{"AIM id only", Framing{Suffix: Bytes("\r"), AIM: true}, []string{"]E0\r"}, nil, 1},
		{"blank lines skipped", Framing{Suffix: Bytes("\r")}, []string{"\r\r49012347\r"}, []want{{"49012347", scan.EAN8}}, 0},
		{"overlong dropped, next kept", Framing{Suffix: Bytes("\r\n"), MaxFrame: 8}, []string{strings.Repeat("x", 30), "yy\r\n49012347\r\n"}, []want{{"49012347", scan.EAN8}}, 1},
		{"overlong split on suffix", Framing{Suffix: Bytes("\r\n"), MaxFrame: 4}, []string{"123456789012\r", "\nabcd\r\n"}, []want{{"abcd", scan.QR}}, 1},
		{"frame at the limit", Framing{Suffix: Bytes("\r"), MaxFrame: 8}, []string{"49012347\r"}, []want{{"49012347", scan.EAN8}}, 0},
		{"one over the limit", Framing{Suffix: Bytes("\r"), MaxFrame: 7}, []string{"49012347\r"}, nil, 1},
		{"no suffix yet", Framing{Suffix: Bytes("\r")}, []string{"4901234"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := feed(tt.f, tt.chunks...)
			if len(g.scans) != len(tt.want) {
				t.Fatalf("got %d scans %v, want %d", len(g.scans), g.scans, len(tt.want))
			}
			for i, w := range tt.want {
				if string(g.scans[i].Data) != w.data || g.scans[i].Symbology != w.sym {
					t.Errorf("scan %d = %q %s, want %q %s", i, g.scans[i].Data, g.scans[i].Symbology, w.data, w.sym)
				}
				if !g.scans[i].At.Equal(time.Unix(1, 0)) {
					t.Errorf("scan %d At = %v", i, g.scans[i].At)
				}
			}
			if len(g.rejects) != tt.rejects {
				t.Errorf("rejects = %v, want %d", g.rejects, tt.rejects)
			}
			for _, err := range g.rejects {
				if err.Error() == "" {
					t.Error("rejection without a reason")
				}
			}
		})
	}
}

func TestFramerBounded(t *testing.T) {
	fr := NewFramer(Framing{Suffix: Bytes("\r\n"), MaxFrame: 64}, func(scan.Scan) {}, nil)
	var rejects int
	fr.reject = func(err error) {
		rejects++
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("reject %v is not ErrTooLong", err)
		}
	}
	chunk := bytes.Repeat([]byte("z"), 1000)
	for range 1000 { // a megabyte without a suffix
		fr.Feed(chunk, time.Time{})
		if fr.Buffered() > 64+3+2 {
			t.Fatalf("buffered %d bytes", fr.Buffered())
		}
	}
	if rejects != 1 {
		t.Errorf("rejects = %d, want one warning for one overlong frame", rejects)
	}
}

func TestAppend(t *testing.T) {
	s := scan.Scan{Data: []byte("4901234567894"), Symbology: scan.EAN13}
	tests := []struct {
		f    Framing
		want string
	}{
		{Framing{Suffix: Bytes("\r")}, "4901234567894\r"},
		{Framing{Suffix: Bytes("\r\n"), AIM: true}, "]E04901234567894\r\n"},
		{Framing{Prefix: Bytes("\x02"), Suffix: Bytes("\x03"), AIM: true}, "\x02]E04901234567894\x03"},
	}
	for _, tt := range tests {
		if got := tt.f.Append(nil, s); string(got) != tt.want {
			t.Errorf("Append(%+v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

package scanner

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	src := `
port: /dev/ttyACM0
baud: 115200
dataBits: 8
parity: even
stopBits: 1
reconnectMin: 50ms
reconnectMax: 2s
mode: line
prefix: STX
suffix: CRLF
aim: true
maxFrame: 2048
feedback:
  good: ""
  review: '\x07'
  deny: 0x070707
ssi:
  ackTimeout: 300ms
  retries: 3
  denyBeep: 0x13
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate("scanner"); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"port", c.Port == "/dev/ttyACM0"},
		{"baud", c.Baud == 115200},
		{"parity", c.Parity == "even"},
		{"reconnect", c.ReconnectMin == 50*time.Millisecond && c.ReconnectMax == 2*time.Second},
		{"mode", c.Mode == ModeLine},
		{"prefix", string(c.Prefix) == "\x02"},
		{"suffix", string(c.Suffix) == "\r\n"},
		{"aim", c.AIM},
		{"maxFrame", c.MaxFrame == 2048},
		{"feedback", len(c.Feedback.Good) == 0 && string(c.Feedback.Review) == "\a" && string(c.Feedback.Deny) == "\a\a\a"},
		{"ssi", c.SSI.AckTimeout == 300*time.Millisecond && c.SSI.Retries == 3 && c.SSI.DenyBeep != nil && *c.SSI.DenyBeep == 0x13 && c.SSI.GoodBeep == nil},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s not decoded: %+v", ch.name, c)
		}
	}
	var bad Config
	err := yaml.Unmarshal([]byte("port: x\nmode: line\nsuffix: 0xQQ\n"), &bad)
	if err == nil || !strings.Contains(err.Error(), "bad hex") {
		t.Errorf("bad suffix: %v", err)
	}
}

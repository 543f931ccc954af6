// Package serialport opens serial ports with go.bug.st/serial from
// configuration, keeps one open across unplug/replug with a capped
// exponential backoff, and lists the ports the OS knows.
package serialport

import (
	"fmt"
	"strings"
	"time"

	"go.bug.st/serial"
)

// Config is how to open one port. Zero values take the defaults noted.
type Config struct {
	// Port is the device path. For USB scanners prefer the
	// /dev/serial/by-id/... link: ttyACM numbers can change on replug.
	// On Windows it is the port's name, COM3 (go.bug.st/serial adds the
	// \\.\ prefix that COM10 and above need).
	Port     string  `yaml:"port"`
	Baud     int     `yaml:"baud,omitempty"`     // default 9600
	DataBits int     `yaml:"dataBits,omitempty"` // 5..8, default 8
	Parity   string  `yaml:"parity,omitempty"`   // none|odd|even|mark|space, default none
	StopBits float64 `yaml:"stopBits,omitempty"` // 1, 1.5 or 2, default 1
	// ReconnectMin and ReconnectMax bound the wait between attempts to
	// reopen a port that went away. Defaults 100ms and 5s.
	ReconnectMin time.Duration `yaml:"reconnectMin,omitempty"`
	ReconnectMax time.Duration `yaml:"reconnectMax,omitempty"`
}

var parities = map[string]serial.Parity{
	"": serial.NoParity, "none": serial.NoParity, "odd": serial.OddParity,
	"even": serial.EvenParity, "mark": serial.MarkParity, "space": serial.SpaceParity,
}

// Validate checks c; key is its configuration path, used in messages.
func (c Config) Validate(key string) error {
	if c.Port == "" {
		return fmt.Errorf("%s.port: required", key)
	}
	if c.Baud < 0 || c.Baud > 4_000_000 {
		return fmt.Errorf("%s.baud: must be between 1 and 4000000, got %d", key, c.Baud)
	}
	if c.DataBits != 0 && (c.DataBits < 5 || c.DataBits > 8) {
		return fmt.Errorf("%s.dataBits: must be 5, 6, 7 or 8, got %d", key, c.DataBits)
	}
	if _, ok := parities[strings.ToLower(c.Parity)]; !ok {
		return fmt.Errorf("%s.parity: must be none, odd, even, mark or space, got %q", key, c.Parity)
	}
	switch c.StopBits {
	case 0, 1, 1.5, 2:
	default:
		return fmt.Errorf("%s.stopBits: must be 1, 1.5 or 2, got %v", key, c.StopBits)
	}
	if c.ReconnectMin < 0 || c.ReconnectMax < 0 {
		return fmt.Errorf("%s.reconnectMin/reconnectMax: must be >= 0", key)
	}
	if c.ReconnectMax != 0 && c.ReconnectMin > c.ReconnectMax {
		return fmt.Errorf("%s.reconnectMin: %v is more than reconnectMax %v", key, c.ReconnectMin, c.ReconnectMax)
	}
	return nil
}

// Mode is the go.bug.st/serial mode for c. InitialStatusBits stays nil:
// setting DTR/RTS fails on pseudo-terminals (no modem lines), which the
// simulator and virtual COM pairs are.
func (c Config) Mode() *serial.Mode {
	m := &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits, Parity: parities[strings.ToLower(c.Parity)], StopBits: serial.OneStopBit}
	if m.BaudRate == 0 {
		m.BaudRate = 9600
	}
	if m.DataBits == 0 {
		m.DataBits = 8
	}
	switch c.StopBits {
	case 1.5:
		m.StopBits = serial.OnePointFiveStopBits
	case 2:
		m.StopBits = serial.TwoStopBits
	}
	return m
}

func (c Config) backoff() Backoff {
	b := Backoff{Min: c.ReconnectMin, Max: c.ReconnectMax}
	if b.Min == 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max == 0 {
		b.Max = 5 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// Open opens the port c names.
func Open(c Config) (serial.Port, error) {
	p, err := serial.Open(c.Port, c.Mode())
	if err != nil {
		return nil, fmt.Errorf("open serial port %s: %w", c.Port, err)
	}
	return p, nil
}

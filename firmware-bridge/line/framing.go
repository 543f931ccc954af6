// Package line frames suffix-terminated scanner output ("keyboard wedge over
// serial"): optional prefix, optional AIM identifier, data, suffix. It is
// used both to read scanners and to write the same framing to a POS.
package line

import (
	"fmt"

	"github.com/posguard/posguard/firmware-bridge/aim"
	"github.com/posguard/posguard/firmware-bridge/scan"
)

// DefaultMaxFrame bounds a frame when the configuration does not.
const DefaultMaxFrame = 4096

// Framing is how scans look on a line-mode port.
type Framing struct {
	Prefix Bytes `yaml:"prefix,omitempty"`
	Suffix Bytes `yaml:"suffix"`
	// AIM is true when each frame carries an AIM symbology identifier
	// after the prefix.
	AIM bool `yaml:"aim,omitempty"`
	// MaxFrame is the longest frame accepted, prefix and suffix excluded;
	// 0 means DefaultMaxFrame.
	MaxFrame int `yaml:"maxFrame,omitempty"`
}

// Validate checks f; key is the configuration path of f, used in messages.
func (f Framing) Validate(key string) error {
	if len(f.Suffix) == 0 {
		return fmt.Errorf("%s.suffix: must not be empty: frames are delimited by it", key)
	}
	if f.MaxFrame < 0 {
		return fmt.Errorf("%s.maxFrame: must be >= 0, got %d", key, f.MaxFrame)
	}
	if f.MaxFrame > 1<<20 {
		return fmt.Errorf("%s.maxFrame: must be <= 1048576, got %d", key, f.MaxFrame)
	}
	return nil
}

func (f Framing) maxFrame() int {
	if f.MaxFrame == 0 {
		return DefaultMaxFrame
	}
	return f.MaxFrame
}

// Append appends the frame for s to dst: prefix, AIM id if f.AIM, data,
// suffix.
func (f Framing) Append(dst []byte, s scan.Scan) []byte {
	dst = append(dst, f.Prefix...)
	if f.AIM {
		dst = append(dst, aim.ID(s.Symbology)...)
	}
	dst = append(dst, s.Data...)
	return append(dst, f.Suffix...)
}

// Package ascii checks identifiers that end up in keys, topics and logs:
// printable ASCII without spaces, so they cannot split a log line or hide
// a control character.
package ascii

import "fmt"

// Visible returns an error naming what and the first byte of s that is not
// visible ASCII (0x21 to 0x7e), or nil.
func Visible(what, s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("%s: byte %#x at %d is not visible ASCII", what, c, i)
		}
	}
	return nil
}

package serialport

import "time"

// Backoff is a capped exponential delay: Min, 2*Min, 4*Min ... Max. None of
// the chosen libraries (go.bug.st/serial, bbolt, paho) offers one for
// serial ports, so this is the small one the link needs.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns the delay before the next attempt and doubles it.
func (b *Backoff) Next() time.Duration {
	if b.next < b.Min {
		b.next = b.Min
	}
	d := b.next
	b.next = min(2*b.next, b.Max)
	return d
}

// Reset starts over from Min after a success.
func (b *Backoff) Reset() { b.next = 0 }

package ssi

import "time"

// DropReason says why a pending multi-packet message was thrown away.
type DropReason string

// Drop reasons, also the label values of the agent's drop metric.
const (
	// DropTimeout: the line was silent for longer than the inter-packet
	// gap, so the scanner stopped sending (unplugged, or it gave up).
	DropTimeout DropReason = "timeout"
	// DropCodeType: a packet of another barcode type arrived; one message
	// never mixes types, so the pending one is cut short.
	DropCodeType DropReason = "code_type"
	// DropNewMessage: after a packet failed its checksum, the next one came
	// as a first transmission instead of the resend: the scanner gave up
	// on the failed packet and started a new message.
	DropNewMessage DropReason = "new_message"
	// DropTooLong: the message grew past the size limit.
	DropTooLong DropReason = "too_long"
	// DropClosed: the link closed with a message pending.
	DropClosed DropReason = "closed"
)

// DropReasons lists every reason, for counters that start at zero.
var DropReasons = []DropReason{DropTimeout, DropCodeType, DropNewMessage, DropTooLong, DropClosed}

// Message is one complete DECODE_DATA message.
type Message struct {
	CodeType byte
	Data     []byte
}

// Assembler joins the DECODE_DATA packets of multi-packet messages (the
// continuation bit set on all but the last) and drops retransmitted
// duplicates. SSI numbers neither messages nor packets, so a message whose
// last packet never comes would swallow the next scan; the assembler drops
// such a partial message when the line goes quiet for longer than the
// scanner's inter-packet gap, when the barcode type changes, and when the
// scanner abandons a failed packet. It does no I/O and reads no clock: the
// caller passes the time bytes arrived.
type Assembler struct {
	max    int
	gap    time.Duration
	onDrop func(reason DropReason, bytes int)

	pending bool // a message has started and its last packet not come
	keep    bool // the pending message's data is kept (false: skipping the rest of a dropped one)
	code    byte
	data    []byte
	heard   time.Time // last time the line carried bytes
	failed  bool      // a DECODE_DATA packet failed its checksum and was not resent yet
	dup     []byte    // last accepted packet (status without the retransmit bit, then data)
	cut     bool      // the previous message was dropped while its scanner still had packets to send
}

// NewAssembler makes an assembler for messages of at most maxMessage bytes
// whose packets are never more than gap apart; onDrop (may be nil) is told
// of every message thrown away and how many bytes it had.
func NewAssembler(maxMessage int, gap time.Duration, onDrop func(DropReason, int)) *Assembler {
	if onDrop == nil {
		onDrop = func(DropReason, int) {}
	}
	return &Assembler{max: maxMessage, gap: gap, onDrop: onDrop, keep: true}
}

// Pending reports whether part of a message waits for its last packet.
func (a *Assembler) Pending() bool { return a.pending }

func (a *Assembler) drop(r DropReason) {
	if a.pending && a.keep {
		a.onDrop(r, len(a.data))
	}
	a.pending, a.keep, a.data = false, true, a.data[:0]
}

// Heard tells the assembler the line carried bytes at now; call it before
// the packets those bytes complete. A pending message older than the gap
// is dropped: the scanner sends the next packet as soon as it has the
// ACK, so a silence that long means it will not come.
func (a *Assembler) Heard(now time.Time) {
	if a.pending && now.Sub(a.heard) > a.gap {
		a.cut = true
		a.drop(DropTimeout)
	}
	a.heard = now
}

// Failed records a DECODE_DATA packet whose checksum failed; the link
// asked for it again.
func (a *Assembler) Failed() { a.failed = true }

// Abort drops a pending message for a reason of the caller's (DropClosed).
func (a *Assembler) Abort(r DropReason) { a.drop(r) }

// Add takes one good DECODE_DATA packet (pk.Data[0] is the code type) and
// returns the message it completes, if any.
func (a *Assembler) Add(pk Packet) (Message, bool) {
	if len(pk.Data) == 0 {
		return Message{}, false
	}
	retx := pk.Status&StatusRetransmit != 0
	failed, cut := a.failed, a.cut
	a.failed, a.cut = false, false
	// After a failed packet a retransmission is its resend, even when it
	// repeats the packet before it (the same item scanned twice).
	if retx && !failed && a.isDup(pk) {
		// Our ACK was lost and the scanner sent the packet again. If the
		// message was dropped meanwhile, the rest of it is coming: skip it
		// rather than deliver its tail as a scan.
		if cut && pk.Status&StatusContinued != 0 {
			a.pending, a.keep = true, false
			a.code = pk.Data[0]
		}
		return Message{}, false
	}
	a.setDup(pk)
	if a.pending {
		switch {
		case failed && !retx:
			a.drop(DropNewMessage)
		case pk.Data[0] != a.code:
			a.drop(DropCodeType)
		}
	}
	if !a.pending {
		a.pending, a.code = true, pk.Data[0]
	}
	if a.keep {
		if len(a.data)+len(pk.Data)-1 > a.max {
			a.onDrop(DropTooLong, len(a.data)+len(pk.Data)-1)
			a.keep, a.data = false, a.data[:0]
		} else {
			a.data = append(a.data, pk.Data[1:]...)
		}
	}
	if pk.Status&StatusContinued != 0 {
		return Message{}, false
	}
	m, ok := Message{CodeType: a.code, Data: append([]byte(nil), a.data...)}, a.keep && len(a.data) > 0
	a.pending, a.keep, a.data = false, true, a.data[:0]
	return m, ok
}

func (a *Assembler) isDup(pk Packet) bool {
	if len(a.dup) != 1+len(pk.Data) || a.dup[0] != pk.Status&^StatusRetransmit {
		return false
	}
	return string(a.dup[1:]) == string(pk.Data)
}

func (a *Assembler) setDup(pk Packet) {
	a.dup = append(append(a.dup[:0], pk.Status&^StatusRetransmit), pk.Data...)
}

package policy

import (
	"strconv"
	"time"
)

// The English sentence of each fired rule (Fired.Reason) is written into
// one byte buffer kept by the pooled evaluation, and the decision gets all
// of its sentences from one string made of that buffer when Evaluate
// returns: a firing sale then pays one allocation for its text instead of
// one per concatenation, number and duration. A rule writes its sentence
// with the w* methods and then fires (fireRule, builtin), which takes what
// was written since the last one fired; a rule that writes and then does
// not fire calls unsay.

// w writes s. Nothing is written for a Decider, which gives no sentences.
func (e *evaluation) w(s string) {
	if e.into == nil {
		e.text = append(e.text, s...)
	}
}

// wInt writes n in decimal.
func (e *evaluation) wInt(n int64) {
	if e.into == nil {
		e.text = strconv.AppendInt(e.text, n, 10)
	}
}

// wYen writes an amount as yen() does: "¥90,400".
func (e *evaluation) wYen(v int64) {
	if e.into == nil {
		e.text = appendYen(e.text, v)
	}
}

// wSpan writes a measured time in whole seconds, in time.Duration's
// format ("20m0s"): token claims have one-second resolution, so the
// sub-second part of the sale time is noise there.
func (e *evaluation) wSpan(d time.Duration) {
	if e.into == nil {
		e.text = appendSeconds(e.text, d)
	}
}

// wNext starts another clause of the sentence: "; " when something is
// written already (join's separator).
func (e *evaluation) wNext() {
	if e.said() {
		e.w("; ")
	}
}

// said reports whether anything has been written since the last rule
// fired.
func (e *evaluation) said() bool { return len(e.text) > e.textFrom }

// unsay drops what was written since the last rule fired.
func (e *evaluation) unsay() { e.text = e.text[:e.textFrom] }

// appendYen appends "¥90,400" (with a leading "-" for a negative amount).
func appendYen(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = uint64(-v)
	}
	b = append(b, "¥"...)
	var digits [20]byte
	s := strconv.AppendUint(digits[:0], u, 10)
	for i := 0; i < len(s); i++ {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return b
}

// appendSeconds appends d truncated to whole seconds exactly as
// d.Truncate(time.Second).String() writes it ("0s", "45s", "20m0s",
// "26h3m0s"), without the allocation of String.
func appendSeconds(b []byte, d time.Duration) []byte {
	s := int64(d / time.Second)
	if s == 0 {
		return append(b, "0s"...)
	}
	u := uint64(s)
	if s < 0 {
		b = append(b, '-')
		u = -u
	}
	h, m, sec := u/3600, u/60%60, u%60
	if h > 0 {
		b = strconv.AppendUint(b, h, 10)
		b = append(b, 'h')
	}
	if h > 0 || m > 0 {
		b = strconv.AppendUint(b, m, 10)
		b = append(b, 'm')
	}
	b = strconv.AppendUint(b, sec, 10)
	return append(b, 's')
}

// durText is d.String() for a duration of the policy document: Load
// keeps the text of each rule's window, within and minAge, so a firing
// rule does not format them again; a rule built without Load formats them
// here.
func durText(kept string, d Duration) string {
	if kept != "" {
		return kept
	}
	return d.D().String()
}

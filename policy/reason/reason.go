// Package reason renders why a rule fired (sale.Reason: a code and its
// parameters) as a sentence in Japanese or English, from one set of
// templates shared by every reader: the store display, the message the POS
// shows, HQ's API and the CLI. It imports only policy/sale, so the display
// renders reasons without linking the policy engine (and CEL).
package reason

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/posguard/posguard/policy/sale"
)

// Languages a reason can be rendered in.
const (
	Japanese = "ja"
	English  = "en"
)

// Valid reports whether lang is a language the templates are written in.
func Valid(lang string) bool { return lang == Japanese || lang == English }

// Render is the sentence for one reason in lang (Japanese unless lang is
// English). A code without a template (one added by a newer register)
// renders as the code and its text, so nothing is dropped.
func Render(lang string, r sale.Reason) string {
	l := pick(lang)
	if t, ok := templates[r.Code]; ok {
		return t[l](&r)
	}
	if r.Text != "" {
		return r.Code + ": " + r.Text
	}
	return r.Code
}

// Fired is the sentence for a fired rule: its reasons rendered in lang and
// joined. A rule without reasons (a decision from a register that predates
// them) shows its English sentence.
func Fired(lang string, f sale.Fired) string {
	if len(f.Reasons) == 0 {
		return f.Reason
	}
	sep := "; "
	if pick(lang) == ja {
		sep = "／"
	}
	parts := make([]string, len(f.Reasons))
	for i, r := range f.Reasons {
		parts[i] = Render(lang, r)
	}
	return strings.Join(parts, sep)
}

// Decision renders every fired rule of d in lang, in order, shadow rules
// marked as such.
func Decision(lang string, d sale.Decision) []string {
	out := make([]string, 0, len(d.Rules))
	for _, f := range d.Rules {
		s := Fired(lang, f)
		if f.Mode == "shadow" {
			if pick(lang) == ja {
				s = "（試験ルール）" + s
			} else {
				s = "(shadow) " + s
			}
		}
		out = append(out, s)
	}
	return out
}

type lang int

const (
	ja lang = iota
	en
)

func pick(l string) lang {
	if l == English {
		return en
	}
	return ja
}

// Yen is an amount as people read it: 12,000円 or ¥12,000.
func Yen(lang string, n int64) string {
	if pick(lang) == en {
		return sign(n) + "¥" + digits(n)
	}
	return sign(n) + digits(n) + "円"
}

func sign(n int64) string {
	if n < 0 {
		return "-"
	}
	return ""
}

// digits is |n| with thousands separators.
func digits(n int64) string {
	u := uint64(n)
	if n < 0 {
		u = uint64(-n)
	}
	s := strconv.FormatUint(u, 10)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Count is n with thousands separators (counts of items and accounts).
func Count(n int64) string { return sign(n) + digits(n) }

// Duration is a span of seconds as people say it: 45秒, 30分, 1時間,
// 1時間30分, 24時間, 3日 (English: 45 s, 30 min, 1 h, 1 h 30 min, 24 h,
// 3 days). Seconds are dropped from spans of a minute or more, and hours
// from spans of three days or more, which are only ever ages.
func Duration(lang string, secs int64) string {
	l := pick(lang)
	if secs < 0 {
		secs = 0
	}
	const day = 24 * 3600
	if secs >= 3*day {
		d := secs / day
		if l == ja {
			return Count(d) + "日"
		}
		return Count(d) + " days"
	}
	if secs < 60 {
		if l == ja {
			return strconv.FormatInt(secs, 10) + "秒"
		}
		return strconv.FormatInt(secs, 10) + " s"
	}
	h, m := secs/3600, secs%3600/60
	var out string
	if h > 0 {
		if l == ja {
			out = strconv.FormatInt(h, 10) + "時間"
		} else {
			out = strconv.FormatInt(h, 10) + " h"
		}
	}
	if m > 0 {
		if l == ja {
			out += strconv.FormatInt(m, 10) + "分"
		} else {
			if out != "" {
				out += " "
			}
			out += strconv.FormatInt(m, 10) + " min"
		}
	}
	return out
}

// Category is the name of what a rule counted in lang, falling back to the
// other language and then to the id.
func Category(lang string, n sale.Names) string {
	first, second := n.JA, n.EN
	if pick(lang) == en {
		first, second = n.EN, n.JA
	}
	switch {
	case first != "":
		return first
	case second != "":
		return second
	}
	return n.ID
}

// MaskAccount shows enough of an account key for staff to tell two
// accounts apart and no more: an ellipsis and its last four characters
// (never more than half of it). Account keys are keyed hashes or wallet
// ids whose beginnings are alike ("acct-…"), so the end is what differs.
func MaskAccount(acct string) string {
	n := utf8.RuneCountInString(acct)
	if n == 0 {
		return ""
	}
	show := min(4, n/2)
	if show == 0 {
		return "…"
	}
	i := 0
	for k := range acct {
		if i == n-show {
			return "…" + acct[k:]
		}
		i++
	}
	return "…"
}

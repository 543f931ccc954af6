package policy

import (
	"testing"
	"time"
)

func TestNewDevice(t *testing.T) {
	const day = `{id: r, kind: new_device, action: review, within: 24h}`
	device := func(ago time.Duration) Payment {
		return Payment{Kind: TokenPG1, Account: "a", DeviceSince: t0.Add(-ago)}
	}
	testRuleCases(t, []ruleCase{
		{name: "new", rule: day, lines: []Line{onigiri(1)}, pay: device(10 * time.Minute), want: Review,
			reason: "device bound 10m0s before the sale < minimum 24h0m0s"},
		{name: "exactly old enough", rule: day, lines: []Line{onigiri(1)}, pay: device(24 * time.Hour), want: Allow},
		{name: "one second too new", rule: day, lines: []Line{onigiri(1)}, pay: device(24*time.Hour - time.Second), want: Review,
			reason: "device bound 23h59m59s before the sale < minimum 24h0m0s"},
		{name: "bound after the sale is clock skew", rule: day, lines: []Line{onigiri(1)}, pay: device(-time.Hour), want: Review,
			reason: "device bound 0s before the sale < minimum 24h0m0s"},
		{name: "token does not say", rule: day, lines: []Line{onigiri(1)}, pay: pay("a"), want: Allow},
		{name: "new but not the category", rule: `{id: r, kind: new_device, action: review, within: 24h, categories: [tobacco]}`,
			lines: []Line{onigiri(1)}, pay: device(0), want: Allow},
		{name: "new and the category", rule: `{id: r, kind: new_device, action: deny, within: 24h, categories: [tobacco]}`,
			lines: []Line{onigiri(1), packs(1)}, pay: device(0), want: Deny, reason: "device bound 0s before the sale < minimum 24h0m0s"},
		{name: "shadow is listed and does not decide", rule: `{id: r, kind: new_device, action: deny, mode: shadow, within: 24h}`,
			lines: []Line{onigiri(1)}, pay: device(time.Hour), want: Allow, reason: "device bound 1h0m0s before the sale < minimum 24h0m0s"},
	})
}

func TestNewDeviceLint(t *testing.T) {
	testRuleLint(t, []lintCase{
		{name: "complete", rule: `{id: r, kind: new_device, action: review, within: 24h}`},
		{name: "no within", rule: `{id: r, kind: new_device, action: review}`, problems: []string{
			"rules[0].within: must be > 0",
		}},
		{name: "a field of another kind", rule: `{id: r, kind: new_device, action: review, within: 24h, minAge: 24h}`, problems: []string{
			"rules[0].minAge: not used by kind new_device",
		}},
	})
}

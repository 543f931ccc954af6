package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo — broker, HQ, display, two agents on ptys —
// with no pauses and checks the story it tells: every fraudulent sale of
// the scenario is held or refused, no legitimate one is touched, and the
// table names the rules that did it.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sum, err := Run(ctx, Options{Out: &out, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	want := Summary{Sales: 17, Fraud: 12, FraudStopped: 12, Legit: 5, LegitTouched: 0, Resolved: 1}
	if sum.Sales != want.Sales || sum.Fraud != want.Fraud || sum.FraudStopped != want.FraudStopped ||
		sum.Legit != want.Legit || sum.LegitTouched != want.LegitTouched || sum.Resolved != want.Resolved {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if sum.Allowed+sum.Reviewed+sum.Denied != sum.Sales {
		t.Errorf("outcomes do not add up: %+v", sum)
	}
	text := out.String()
	for _, line := range []string{
		"tobacco cartons 15 > limit 2",               // the Saitama victim
		"top-up ¥90,000 40m0s before",                // the fresh top-up, measured
		"accounts at register r1 in 30m0s > limit 3", // the Shinjuku crew
		"token rejected: replayed",                   // the screenshot
		"account is on the HQ denylist",              // HQ's denylist at the other till
		"fraudulent sales stopped: 12 of 12",
		"REJECTED",                   // the manager's resolution, as the display shows it
		"store display: 2 registers", // the display saw both registers' status
	} {
		if !strings.Contains(text, line) {
			t.Errorf("demo output lacks %q", line)
		}
	}
	if !regexp.MustCompile(`HQ API \(fleet, alerts\): +http://\S+/v1/fleet +http://\S+/v1/alerts\n`).MatchString(text) {
		t.Error("the HQ API line does not give both the fleet and the alerts URL")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}

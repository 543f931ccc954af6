package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/internal/syncbuf"
	"github.com/posguard/posguard/policy/bundle"
)

var (
	displayLine = regexp.MustCompile(`store display s1: +(http://\S+)/  \(manager PIN (\d+)\)`)
	keepLine    = regexp.MustCompile(`--keep: everything stays up\. Open the store display above; the manager PIN is (\d+)`)
)

// TestDemo runs the whole demo — broker, HQ, display, two agents on ptys —
// with no pauses and checks the story it tells: every fraudulent sale of
// the scenario is held or refused, no legitimate one is touched, and the
// table names the rules that did it. With --keep it stays up, and the PIN
// it prints resolves the review it leaves open, as a visitor would.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out syncbuf.Buffer
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, Options{Out: &out, Dir: t.TempDir(), Keep: true})
		done <- result{sum, err}
	}()
	var keep []string
	for keep == nil {
		select {
		case res := <-done:
			t.Fatalf("demo ended before --keep: %v\n%s", res.err, out.String())
		case <-time.After(100 * time.Millisecond):
			keep = keepLine.FindStringSubmatch(out.String())
		}
	}
	text := out.String()
	disp := displayLine.FindStringSubmatch(text)
	if disp == nil || disp[2] != keep[1] {
		t.Fatalf("no display address with the PIN of the --keep line %q in\n%s", keep[1], text)
	}
	c, err := newDisplayClient(ctx, disp[1])
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.board(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var resolved bool
	for _, a := range v.Alerts {
		if a.State != "open" {
			continue
		}
		// The register checks the PIN: only the right one approves.
		if err := c.resolve(ctx, a.Register, a.ReviewID, "approve", keep[1]); err != nil {
			t.Fatalf("the printed PIN does not resolve the open review: %v", err)
		}
		if _, err := c.waitAlert(ctx, a.SaleID, "approved"); err != nil {
			t.Fatal(err)
		}
		resolved = true
	}
	if !resolved {
		t.Errorf("--keep left no open review to resolve:\n%s", text)
	}
	cancel()
	res := <-done
	sum := res.sum
	if res.err != nil && res.err != context.Canceled {
		t.Fatalf("demo: %v\n%s", res.err, text)
	}
	// The office's 10 cartons are the one legitimate sale touched: held
	// for a manager, never refused.
	// The crew's reserve accounts get four small sales through (a test buy
	// at each store) before HQ's chain rule stops them.
	want := Summary{Sales: 25, Fraud: 19, FraudStopped: 15, Legit: 6, LegitTouched: 1, Resolved: 1}
	if sum.Sales != want.Sales || sum.Fraud != want.Fraud || sum.FraudStopped != want.FraudStopped ||
		sum.Legit != want.Legit || sum.LegitTouched != want.LegitTouched || sum.Resolved != want.Resolved {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if sum.Allowed+sum.Reviewed+sum.Denied != sum.Sales {
		t.Errorf("outcomes do not add up: %+v", sum)
	}
	for _, line := range []string{
		"tobacco cartons 15 > limit 2 (+20)",       // the Saitama victim
		"¥90,000 top-up 40 min before",             // the fresh top-up, measured
		"accounts at store s1 in 30 min > limit 3", // the Shinjuku crew, counted store-wide
		"token rejected: replayed",                 // the screenshot
		"account is on the HQ denylist",            // HQ's denylist at the other till
		"DENY (score 100)",                         // the crew's first account
		"fraudulent sales stopped: 15 of 19; legitimate sales touched: 1 of 6",
		"REJECTED",                      // the manager's resolution, as the display shows it
		"store display s1: 2 registers", // each display saw its store's registers' status
		"store display s2: 1 registers",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("demo output lacks %q", line)
		}
	}
	// The legitimate bulk buyers: the regular's two cartons pass, the
	// office's ten are held for a manager, not refused.
	for _, re := range []string{`regular smoker: two cartons +¥12,000  ALLOW \(score 10\)\n`, `office manager: the monthly order, 10 cartons +¥60,000  REVIEW \(score 55\)\n`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("demo output does not match %s", re)
		}
	}
	// The crew moves to s2: each account's first sale there is its second
	// store, HQ's chain rule denylists it at every register, and s2 refuses
	// its cartons naming the rule — in English in the log, in Japanese on
	// s2's display.
	for _, i := range []string{"9", "10"} {
		re := `s2/r1  crew moves to store s2, account ` + i + `: onigiri +¥200  ALLOW\n` +
			`\d\d:\d\d  HQ     chain rule crew-hopping: account_stores: account paid at 2 stores within 30m0s → denylisted for 24 h at all 3 registers [\d.]+ s after the sale \(seq \d+\)\n` +
			`\d\d:\d\d  s2/r1  crew, account ` + i + ` at s2: two cartons +¥12,000  DENY \(score 10\)\n` +
			` +· sale ¥12,000 > limit ¥10,000 \(\+10\)\n` +
			` +· account is on the HQ denylist: chain rule crew-hopping\n` +
			` +· display s2: 本部の利用停止リストにあるアカウント（チェーンルール crew-hopping）\n`
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("demo output does not show account %s refused at s2 by the chain rule (%s)", i, re)
		}
	}
	if !regexp.MustCompile(`HQ API \(fleet, alerts\): +http://\S+/v1/fleet +http://\S+/v1/alerts\n`).MatchString(text) {
		t.Error("the HQ API line does not give both the fleet and the alerts URL")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}

// The demo signs the example policy valid from its clock, whatever dates
// the file has: in 2031, years after the file's expiresAt, a register
// still takes it.
func TestDemoPolicyAfterExampleExpiry(t *testing.T) {
	at := time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)
	r := &rig{now: func() time.Time { return at }}
	var err error
	if _, r.hqKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, r.wallet, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := r.makePolicy(); err != nil {
		t.Fatalf("demo policy in 2031: %v", err)
	}
	signed, err := bundle.SignPolicy(r.hqKey, bundle.AlgEdDSA, hqKID, r.policy)
	if err != nil {
		t.Fatal(err)
	}
	trusted := []bundle.TrustedKey{{KID: hqKID, Alg: bundle.AlgEdDSA, Public: r.hqKey.Public()}}
	for _, d := range []time.Duration{0, 29 * 24 * time.Hour} {
		if _, err := bundle.VerifyPolicy(signed, trusted, storeID, 0, at.Add(d)); err != nil {
			t.Errorf("a register %v after the demo's start refuses its policy: %v", d, err)
		}
	}
}

package display

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/internal/golden"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/wire"
)

// browser starts headless Chromium for one test (internal/browsertest):
// without it the test skips, unless POSGUARD_INTEGRATION=1 (CI).
func browser(t *testing.T) context.Context { return browsertest.Start(t, 1280, 1000) }

// run runs steps with a timeout and fails the test with the page's content
// when one fails.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, steps...)
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Get(t, ctx, what, a)
}

type css = chromedp.CSS

// An alert published on the broker appears on the page; a review approved on
// the page with a PIN reaches the register over the broker as a resolve
// command; the register's resolution comes back and the page shows it.
func TestBrowserAlertAndResolve(t *testing.T) {
	ctx := browser(t)
	r := startRig(t, nil)
	cmds := registerClient(t, r.broker.URL(), testStore, "R2")
	now := time.Now().UTC()

	run(t, ctx, "open page", chromedp.Navigate(r.base+"/?lang=en"), chromedp.WaitVisible(css("#live.live-on")))

	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Deny, now), false)
	deny := `#alerts article.alert.deny[data-id="S001/R1/ep1/1"]`
	run(t, ctx, "deny alert appears", chromedp.WaitVisible(css(deny)))
	denyText := get(t, ctx, "deny text", chromedp.Text(css(deny)))
	for _, want := range []string{"DENY", "Register R1", "tobacco cartons 6 > limit 2", "…9c21", "tobacco cartons ×6", "¥35,100", "Score 25 (shadow 35)", "device bound 10 min before the sale < minimum 24 h (+25)", "¥90,000 top-up 12 min before a ¥34,800 sale (within 1 h) (+35) (shadow rule)"} {
		if !strings.Contains(denyText, want) {
			t.Errorf("deny alert text lacks %q:\n%s", want, denyText)
		}
	}
	if strings.Contains(denyText, "7f3a9c21") {
		t.Error("full account shown on the page")
	}

	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 5, policy.Review, now), false)
	review := `#pinned article.alert.review[data-review="sale-R2-5"]`
	run(t, ctx, "review pinned", chromedp.WaitVisible(css(review)))
	countdown := get(t, ctx, "countdown", chromedp.Text(css(review+" .countdown")))
	if !strings.HasPrefix(countdown, "left 1:") && !strings.HasPrefix(countdown, "left 2:") {
		t.Errorf("countdown = %q, want about two minutes left", countdown)
	}

	// The register refuses: the page says why, from the refusal's code
	// (the sentence says something else on purpose), and offers the
	// buttons again.
	seq := uint64(6)
	for _, c := range []struct {
		code event.Code
		want string
	}{
		{event.CodeWrongPIN, "Wrong PIN"},
		{event.CodeAlreadyResolved, "Already resolved at the register"},
	} {
		run(t, ctx, "approve, refused with "+string(c.code),
			chromedp.Click(css(review+" button.approve")),
			chromedp.WaitVisible(css("#pin-input")),
			chromedp.SendKeys(css("#pin-input"), "0000"),
			chromedp.Click(css("#pin-send")),
			chromedp.WaitVisible(css(review+" .result.sent")))
		if _, err := recvCmd(cmds, 10*time.Second); err != nil {
			t.Fatal("the register never got the command")
		}
		r.publish(wire.AlertsTopic(testStore, "R2"), refusalEvent(testStore, "R2", seq, "sale-R2-5", c.code, "no reason in this sentence", time.Now().UTC()), false)
		seq++
		run(t, ctx, "page shows the refusal", chromedp.WaitVisible(css(review+" .result.refused")), chromedp.WaitVisible(css(review+" button.approve")))
		if refusal := get(t, ctx, "refusal", chromedp.Text(css(review+" .result.refused"))); !strings.Contains(refusal, c.want) {
			t.Errorf("refusal %s: text = %q, want %q", c.code, refusal, c.want)
		}
	}

	run(t, ctx, "approve with PIN",
		chromedp.Click(css(review+" button.approve")),
		chromedp.WaitVisible(css("#pin-input")),
		chromedp.SendKeys(css("#pin-input"), "4711"),
		chromedp.Click(css("#pin-send")),
		chromedp.WaitVisible(css(review+" .result.sent")))

	m, err := recvCmd(cmds, 10*time.Second)
	if err != nil {
		t.Fatal("the register never got the resolve command")
	}
	cmd, err := wire.ParseCommand(m.Topic(), m.Payload())
	if err != nil {
		t.Fatalf("command: %v", err)
	}
	if cmd.Type != wire.CmdResolve || cmd.ReviewID != "sale-R2-5" || cmd.Action != wire.Approve || cmd.PIN.Reveal() != "4711" || cmd.Register != "R2" {
		t.Fatalf("command = %+v (pin %q)", cmd, cmd.PIN.Reveal())
	}

	// The register checks the PIN, forwards the held payment and reports.
	r.publish(wire.AlertsTopic(testStore, "R2"), resolutionEvent(testStore, "R2", seq, "sale-R2-5", "approve", time.Now().UTC()), false)
	// It stays pinned where the manager was looking (see
	// TestBrowserResolvedStaysPinned for when it moves down).
	done := `#pinned article.alert.review.state-approved[data-review="sale-R2-5"]`
	run(t, ctx, "page shows it resolved", chromedp.WaitVisible(css(done)),
		chromedp.WaitNotPresent(css(`#alerts article[data-review="sale-R2-5"]`)))
	result := get(t, ctx, "result", chromedp.Text(css(done+" .result")))
	if !strings.Contains(result, "approved") || !strings.Contains(result, "manager-tanaka") {
		t.Errorf("result = %q", result)
	}

	// Switching the language on the page relabels it without a reload.
	run(t, ctx, "switch to Japanese", chromedp.Click(css("#lang")))
	label := get(t, ctx, "result in Japanese", chromedp.Text(css(done+" .result")))
	htmlLang := get(t, ctx, "html lang", chromedp.AttributeValue(css("html"), "lang"))
	if !strings.Contains(label, "承認済み") || htmlLang.Value != "ja" {
		t.Errorf("after switching: result %q, html lang %q", label, htmlLang.Value)
	}
}

// A resolved review stays at the top with its outcome and who resolved it
// for Config.PinResolved, then moves down to the list; a register tile
// shows its policy version with the policy's issue date.
func TestBrowserResolvedStaysPinned(t *testing.T) {
	ctx := browser(t)
	r := startRig(t, func(c *Config) { c.PinResolved = 3 * time.Second })
	now := time.Now().UTC()
	issued := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	st := status(testStore, "R1", true, now)
	st.Policy = &wire.PolicyInfo{Name: "chain-default", Version: issued.Unix(), IssuedAt: issued}
	r.publish(wire.StatusTopic(testStore, "R1"), st, true)
	// Older alerts below, so the list is long, as in a busy store.
	for i := uint64(1); i <= 12; i++ {
		r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", i, policy.Deny, now.Add(-time.Duration(20-i)*time.Minute)), false)
	}
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 20, policy.Review, now), false)
	run(t, ctx, "open page", chromedp.Navigate(r.base+"/?lang=en"), chromedp.WaitVisible(css("#live.live-on")),
		chromedp.WaitVisible(css(`#pinned article.alert.review[data-review="sale-R1-20"]`)))

	tile := get(t, ctx, "tile", chromedp.Text(css(`.tile[data-register="R1"]`)))
	if want := fmt.Sprintf("chain-default v%d (issued 29 Nov 2026)", issued.Unix()); !strings.Contains(tile, want) {
		t.Errorf("tile %q lacks %q", tile, want)
	}

	r.publish(wire.AlertsTopic(testStore, "R1"), resolutionEvent(testStore, "R1", 21, "sale-R1-20", "reject", time.Now().UTC()), false)
	done := `#pinned article.alert.review.state-rejected[data-review="sale-R1-20"]`
	run(t, ctx, "resolved card stays pinned", chromedp.WaitVisible(css(done)))
	result := get(t, ctx, "result", chromedp.Text(css(done+" .result")))
	if !strings.Contains(result, "rejected") || !strings.Contains(result, "by manager-tanaka") {
		t.Errorf("pinned result = %q, want the outcome and who resolved it", result)
	}
	// At the top of the page: above the register tiles and every alert.
	above := get(t, ctx, "layout", chromedp.Evaluate[bool](`(() => {
		const c = document.querySelector('`+done+`').getBoundingClientRect();
		const t = document.getElementById("tiles").getBoundingClientRect();
		return c.top >= 0 && c.bottom <= window.innerHeight && c.bottom <= t.top;
	})()`))
	if !above {
		t.Error("the resolved card is not at the top of the page")
	}

	moved := `#alerts article.alert.review.state-rejected[data-review="sale-R1-20"]`
	run(t, ctx, "moves down once its pinned time is up",
		chromedp.WaitVisible(css(moved)), chromedp.WaitNotPresent(css(done)), chromedp.WaitNotVisible(css("#pinned-section")))
}

// The page says it is stale when the broker goes away and goes live again by
// itself when it is back; the same when the display server itself restarts.
func TestBrowserOfflineBanner(t *testing.T) {
	ctx := browser(t)
	r := startRig(t, nil)
	run(t, ctx, "open page", chromedp.Navigate(r.base+"/?lang=en"),
		chromedp.WaitVisible(css("#live.live-on")), chromedp.WaitNotVisible(css("#stale")))

	r.broker.Stop()
	run(t, ctx, "banner on broker loss", chromedp.WaitVisible(css("body.stale #stale")))
	if banner := get(t, ctx, "banner", chromedp.Text(css("#stale"))); !strings.Contains(banner, "Broker connection lost") {
		t.Errorf("banner = %q", banner)
	}

	r.broker.Restart()
	run(t, ctx, "live again after broker restart",
		chromedp.WaitVisible(css("#live.live-on")), chromedp.WaitNotVisible(css("#stale")))
	// Alerts flow again after the reconnect (the subscription was renewed).
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 9, policy.Deny, time.Now().UTC()), false)
	run(t, ctx, "alert after reconnect", chromedp.WaitVisible(css(`article[data-id="S001/R1/ep1/9"]`)))

	// The display server restarts on the same address: the page notices,
	// says so, and comes back with a fresh snapshot.
	addr := strings.TrimPrefix(r.base, "http://")
	r.stopServer()
	run(t, ctx, "banner on server loss", chromedp.WaitVisible(css("body.stale #stale")))
	if banner := get(t, ctx, "banner", chromedp.Text(css("#stale"))); !strings.Contains(banner, "Connection lost") {
		t.Errorf("banner = %q", banner)
	}
	r.restartServer(addr)
	run(t, ctx, "live after server restart",
		chromedp.WaitVisible(css("#live.live-on")), chromedp.WaitNotVisible(css("#stale")))
}

// A screenshot with a deny and a review, in Japanese, for the README. It is
// written to testdata only with -update or POSGUARD_UPDATE_SCREENSHOT=1.
func TestBrowserScreenshot(t *testing.T) {
	ctx := browser(t)
	r := startRig(t, nil)
	now := time.Now().UTC()
	for i, reg := range []string{"R1", "R2", "R3"} {
		r.publish(wire.StatusTopic(testStore, reg), status(testStore, reg, i != 2, now), true)
	}
	r.publish(wire.AlertsTopic(testStore, "R1"), alertEvent(testStore, "R1", 1, policy.Deny, now.Add(-40*time.Second)), false)
	r.publish(wire.AlertsTopic(testStore, "R2"), alertEvent(testStore, "R2", 2, policy.Review, now.Add(-20*time.Second)), false)
	run(t, ctx, "render",
		chromedp.Navigate(r.base+"/?lang=ja"),
		chromedp.WaitVisible(css("#live.live-on")),
		chromedp.WaitVisible(css(`.tile[data-register="R3"]`)),
		chromedp.WaitVisible(css("#alerts article.alert.deny")),
		chromedp.WaitVisible(css("#pinned article.alert.review")),
		chromedp.Sleep(1500*time.Millisecond)) // let the deny flash fade
	png := get(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot is not a PNG of a rendered page (%d bytes)", len(png))
	}
	out := filepath.Join(t.TempDir(), "screenshot.png")
	if golden.Update() || os.Getenv("POSGUARD_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("testdata", "screenshot.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

// A register online without its store facts link says "peers unreachable"
// on its tile, its peer does not, and the line goes once the link is back.
func TestBrowserPeersUnreachable(t *testing.T) {
	ctx := browser(t)
	r := startRig(t, nil)
	now := time.Now().UTC()
	cut := status(testStore, "R1", true, now)
	cut.Peers = &wire.Peers{Reachable: false}
	r.publish(wire.StatusTopic(testStore, "R1"), cut, true)
	fine := status(testStore, "R2", true, now)
	fine.Peers = &wire.Peers{Reachable: true}
	r.publish(wire.StatusTopic(testStore, "R2"), fine, true)
	run(t, ctx, "open page", chromedp.Navigate(r.base+"/?lang=en"), chromedp.WaitVisible(css("#live.live-on")),
		chromedp.WaitVisible(css(`.tile[data-register="R1"] .peers`)), chromedp.WaitVisible(css(`.tile[data-register="R2"]`)))
	if got := get(t, ctx, "R1 tile", chromedp.Text(css(`.tile[data-register="R1"] .peers`))); !strings.Contains(got, "Peers unreachable") {
		t.Errorf("R1 tile says %q", got)
	}
	if n := get(t, ctx, "R2 peers line", chromedp.Evaluate[int](`document.querySelectorAll('.tile[data-register="R2"] .peers').length`)); n != 0 {
		t.Errorf("R2 shares facts but its tile has %d peers lines", n)
	}

	back := status(testStore, "R1", true, now.Add(time.Second))
	back.Peers = &wire.Peers{Reachable: true}
	r.publish(wire.StatusTopic(testStore, "R1"), back, true)
	run(t, ctx, "line gone when the link is back", chromedp.WaitNotPresent(css(`.tile[data-register="R1"] .peers`)))
}

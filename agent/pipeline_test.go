package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/event"
	fbline "github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/sim"
	"github.com/posguard/posguard/firmware-bridge/ssi"
	"github.com/posguard/posguard/policy"
)

// Scanner feedback bytes in line mode, told apart in the tests.
const (
	fbGood   = "\x01"
	fbReview = "\x02"
	fbDeny   = "\x03"
)

// ptyRig is an agent between a simulated scanner and a simulated POS,
// both real pseudo-terminals opened through go.bug.st/serial.
type ptyRig struct {
	*running
	t   testing.TB
	f   *fixture
	scn *sim.Sim
	pos *sim.POS
	fb  bytes.Buffer // scanner feedback not yet matched
}

func newPTYRig(t testing.TB, extra string, opts ...agent.Options) *ptyRig {
	t.Helper()
	s, p, y := newPTYLinks(t)
	f := newFixture(t)
	cfg := f.config(y + extra)
	var o agent.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	r := &ptyRig{running: start(t, cfg, o), t: t, f: f, scn: s, pos: p}
	r.linksUp()
	return r
}

// newPTYLinks opens a simulated scanner and POS and returns the agent
// configuration that uses them; it ends inside the session block, so
// session keys may follow.
func newPTYLinks(t testing.TB) (*sim.Sim, *sim.POS, string) {
	t.Helper()
	scannerFraming := fbline.Framing{Suffix: fbline.Bytes("\r"), AIM: true}
	s, err := sim.New(sim.Options{Mode: sim.ModeLine, Framing: scannerFraming})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := sim.NewPOS("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return s, p, fmt.Sprintf(`scanner:
  port: %s
  mode: line
  suffix: CR
  aim: true
  reconnectMin: 20ms
  reconnectMax: 100ms
  feedback: {good: "hex:01", review: "hex:02", deny: "hex:03"}
pos:
  port: %s
  prefix: STX
  suffix: CRLF
  aim: true
  reconnectMin: 20ms
  reconnectMax: 100ms
session:
  voidBarcode: VOID-0000
`, s.Path(), p.Path())
}

// linksUp waits until the agent has opened both pseudo-terminals.
func (r *ptyRig) linksUp() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.scn.WaitConnected(ctx); err != nil {
		r.t.Fatal(err)
	}
	if err := r.pos.WaitConnected(ctx); err != nil {
		r.t.Fatal(err)
	}
	waitFor(r.t, "links up", func() bool {
		var st agent.Status
		r.do(r.t, "GET", "/v1/status", nil, &st)
		return st.Links.Scanner == "up" && st.Links.POS == "up"
	})
}

func (r *ptyRig) scan(sym scan.Symbology, data string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.scn.Scan(ctx, sym, []byte(data)); err != nil {
		r.t.Fatal(err)
	}
}

// posGets waits for exactly these frames at the POS.
func (r *ptyRig) posGets(frames ...string) {
	r.t.Helper()
	want := ""
	for _, f := range frames {
		want += f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := r.pos.Next(ctx, len(want))
	if err != nil {
		r.t.Fatal(err)
	}
	if string(got) != want {
		r.t.Fatalf("POS got %q, want %q", got, want)
	}
}

// feedback waits for the scanner feedback bytes fb.
func (r *ptyRig) feedback(fb string) {
	r.t.Helper()
	deadline := time.After(5 * time.Second)
	for r.fb.Len() < len(fb) {
		select {
		case ev := <-r.scn.Feedback():
			if ev.Kind == "bytes" {
				r.fb.Write(ev.Data)
			}
		case <-deadline:
			r.t.Fatalf("scanner feedback %q not received (have %q)", fb, r.fb.String())
		}
	}
	if got := string(r.fb.Next(len(fb))); got != fb {
		r.t.Fatalf("scanner feedback %q, want %q", got, fb)
	}
}

// posQuiet checks nothing more reached the POS.
func (r *ptyRig) posQuiet() {
	r.t.Helper()
	time.Sleep(50 * time.Millisecond)
	if b := r.pos.Take(); len(b) > 0 {
		r.t.Fatalf("POS got %q, want nothing", b)
	}
}

func (r *ptyRig) lastEvent() event.Event {
	r.t.Helper()
	var evs []event.Event
	r.do(r.t, "GET", "/v1/events?limit=1000", nil, &evs)
	if len(evs) == 0 {
		r.t.Fatal("no decision events")
	}
	return evs[len(evs)-1]
}

func posItem(jan string) string  { return "\x02]E0" + jan + "\r\n" }
func posToken(tok string) string { return "\x02]Q1" + tok + "\r\n" }

// The end-to-end scenario over real ptys.
func TestPipelineOverPTY(t *testing.T) {
	r := newPTYRig(t, "")
	f := r.f

	// Item scans reach the POS at once, byte-exact in the POS framing.
	r.scan(scan.EAN13, onigiri)
	r.scan(scan.EAN13, coffee)
	r.posGets(posItem(onigiri), posItem(coffee))

	// An allowed PG1 payment is forwarded after the good beep's decision.
	tok := f.mint("pty-1", nil)
	r.scan(scan.QR, tok)
	r.posGets(posToken(tok))
	r.feedback(fbGood)
	ev := r.lastEvent()
	if ev.Decision.Outcome != policy.Allow || len(ev.Request.Lines) != 2 || ev.Request.Lines[0].Quantity != 1 ||
		ev.Request.Lines[0].Category != "food" || ev.Request.Lines[1].UnitPrice != 300 {
		t.Fatalf("allowed sale event %+v", ev.Request)
	}

	// The same token again (a screenshot): denied, not forwarded.
	r.scan(scan.EAN13, onigiri)
	r.posGets(posItem(onigiri))
	r.scan(scan.QR, tok)
	r.feedback(fbDeny)
	r.posQuiet()
	if ev := r.lastEvent(); ev.Decision.Outcome != policy.Deny || ev.Request.Payment.Invalid != "replayed" {
		t.Fatalf("replay event %+v %+v", ev.Decision, ev.Request.Payment)
	}

	// A fresh top-up spent on cartons: held; approved with the PIN, the
	// held token goes to the POS.
	fresh := f.mint("pty-fresh", func(c *claims) { c.TopUpAt, c.TopUpAmount = time.Now().Add(-5*time.Minute), 90000 })
	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.posGets(posItem(carton), posItem(carton))
	r.scan(scan.QR, fresh)
	r.feedback(fbReview)
	r.posQuiet()
	held := r.lastEvent()
	if held.Decision.Outcome != policy.Review {
		t.Fatalf("fresh top-up: %+v", held.Decision)
	}
	if code, body := r.resolve(t, held.SaleID, "approve", "1234"); code != http.StatusForbidden {
		t.Fatalf("wrong PIN: %d %s", code, body)
	}
	r.posQuiet()
	if code, body := r.resolve(t, held.SaleID, "approve", testPIN); code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, body)
	}
	r.posGets(posToken(fresh))
	r.feedback(fbGood)

	// Another held sale, rejected: the token never reaches the POS.
	fresh2 := f.mint("pty-fresh-2", func(c *claims) { c.TopUpAt, c.TopUpAmount = time.Now().Add(-5*time.Minute), 50000 })
	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.posGets(posItem(carton), posItem(carton))
	r.scan(scan.QR, fresh2)
	r.feedback(fbReview)
	rejected := r.lastEvent()
	if code, body := r.resolve(t, rejected.SaleID, "reject", testPIN); code != http.StatusOK {
		t.Fatalf("reject: %d %s", code, body)
	}
	r.feedback(fbDeny)
	r.posQuiet()

	// The Shinjuku crew: account after account buying tobacco at this
	// register. Two accounts already paid for cartons here; with
	// maxAccounts 3 the third is allowed and the 8th is denied.
	for i := 3; i <= 8; i++ {
		acct := f.mint(fmt.Sprintf("pty-crew-%d", i), nil)
		r.scan(scan.EAN13, pack)
		r.posGets(posItem(pack))
		r.scan(scan.QR, acct)
		if i == 3 {
			r.posGets(posToken(acct))
			r.feedback(fbGood)
			continue
		}
		r.feedback(fbDeny)
		ev := r.lastEvent()
		if ev.Decision.Outcome != policy.Deny || fired(agent.Result{Decision: *ev.Decision})[0] != "register-accounts" {
			t.Fatalf("account %d: %+v", i, ev.Decision)
		}
	}
	r.posQuiet()
}

// The void barcode and the idle timeout both end the session: the next
// payment decides an empty cart.
func TestSessionEnds(t *testing.T) {
	r := newPTYRig(t, "  idleTimeout: 200ms\n")
	f := r.f
	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.scan(scan.Code128, "VOID-0000")
	r.posGets(posItem(carton), posItem(carton), posItem(carton), "\x02]C0VOID-0000\r\n")
	tok := f.mint("void", nil)
	r.scan(scan.QR, tok)
	r.posGets(posToken(tok))
	r.feedback(fbGood)
	if ev := r.lastEvent(); len(ev.Request.Lines) != 0 {
		t.Fatalf("cart after void: %+v", ev.Request.Lines)
	}

	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.scan(scan.EAN13, carton)
	r.posGets(posItem(carton), posItem(carton), posItem(carton))
	time.Sleep(400 * time.Millisecond)
	tok = f.mint("idle", nil)
	r.scan(scan.QR, tok)
	r.posGets(posToken(tok))
	r.feedback(fbGood)
	if ev := r.lastEvent(); len(ev.Request.Lines) != 0 {
		t.Fatalf("cart after idle timeout: %+v", ev.Request.Lines)
	}
}

// The same pipeline with a Zebra SSI scanner: scans arrive as DECODE_DATA
// packets, feedback goes back as BEEP commands.
func TestPipelineSSI(t *testing.T) {
	s, err := sim.New(sim.Options{Mode: sim.ModeSSI})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := sim.NewPOS("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f := newFixture(t)
	cfg := f.config(fmt.Sprintf("scanner: {port: %s, mode: ssi, reconnectMin: 20ms}\npos: {port: %s, suffix: CR}\n", s.Path(), p.Path()))
	r := &ptyRig{running: start(t, cfg, agent.Options{}), t: t, f: f, scn: s, pos: p}
	beep := func(code byte) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ev := <-s.Feedback():
				if ev.Kind == "beep" {
					if ev.Code != code {
						t.Fatalf("beep 0x%02X, want 0x%02X", ev.Code, code)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no beep 0x%02X", code)
			}
		}
	}
	r.scan(scan.EAN13, onigiri)
	r.posGets(onigiri + "\r")
	tok := f.mint("ssi-1", nil)
	r.scan(scan.QR, tok)
	r.posGets(tok + "\r")
	beep(0x00)
	r.scan(scan.QR, tok)
	beep(0x11)
	r.posQuiet()

	// Issue 21: a QR whose last packet never comes, then an item. The POS
	// gets the item alone, and status and metrics count the drop.
	part, _ := ssi.Encode(ssi.Packet{Opcode: ssi.OpDecodeData, Status: ssi.StatusContinued, Data: append([]byte{ssi.CodeQR}, "PG1:PARTIAL"...)})
	if err := s.Raw(part); err != nil {
		t.Fatal(err)
	}
	r.scan(scan.EAN13, onigiri)
	r.posGets(onigiri + "\r")
	var st agent.Status
	r.do(t, "GET", "/v1/status", nil, &st)
	if st.Scanner == nil || st.Scanner.PartialsDropped["code_type"] != 1 || st.Scanner.PartialsDropped["timeout"] != 0 {
		t.Errorf("status scanner %+v, want one code_type drop", st.Scanner)
	}
	_, _, metrics := r.send(t, "GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics), `posguard_agent_scanner_partials_dropped_total{reason="code_type"} 1`+"\n") {
		t.Errorf("metrics:\n%s", grepLines(string(metrics), "partials_dropped"))
	}
}

// When the decision cannot be stored (a full disk), a scanned token is
// refused: deny beep, nothing to the POS.
func TestPipelineFullDisk(t *testing.T) {
	r := newPTYRig(t, "", agent.Options{StateMaxSize: 64 << 10})
	for i := 0; ; i++ {
		if i == 500 {
			t.Fatal("the state file never filled up")
		}
		res, code := r.decide(t, r.f.mint(fmt.Sprintf("fill-%d", i), nil), line(strings.Repeat("4", 40), 1), line(onigiri, 3))
		if code == http.StatusServiceUnavailable && res.Outcome == policy.Deny {
			break
		}
	}
	r.scan(scan.EAN13, onigiri)
	r.posGets(posItem(onigiri))
	r.scan(scan.QR, r.f.mint("full-disk", nil))
	r.feedback(fbDeny)
	r.posQuiet()
}

// TestPipelineScannerSimScript drives the agent the way developers and
// field testers do: a scanner-sim script (the same player as `posguard
// scanner-sim`) of item scans and a payment QR.
func TestPipelineScannerSimScript(t *testing.T) {
	r := newPTYRig(t, "")
	tok := r.f.mint("script-1", nil)
	script := "# a customer\nean13 " + onigiri + "\nean13 " + coffee + "\nqr " + tok + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var log bytes.Buffer
	if err := r.scn.Play(ctx, strings.NewReader(script), &log); err != nil {
		t.Fatalf("play: %v\n%s", err, log.String())
	}
	r.posGets(posItem(onigiri), posItem(coffee), posToken(tok))
	r.feedback(fbGood)
	if ev := r.lastEvent(); ev.Decision.Outcome != policy.Allow || len(ev.Request.Lines) != 2 {
		t.Fatalf("scripted sale: %+v %+v", ev.Decision, ev.Request.Lines)
	}
}

// A scanner that keeps sending items cannot grow the cart without end or
// get a sale decided on part of it: past policy.MaxLines different items
// the sale is denied with the reason.
func TestCartBeyondBoundsDenied(t *testing.T) {
	r := newPTYRig(t, "")
	var frames []string
	for i := range policy.MaxLines + 2 {
		jan := fmt.Sprintf("49%011d", i)
		r.scan(scan.EAN13, jan)
		frames = append(frames, posItem(jan))
	}
	r.posGets(frames...)
	tok := r.f.mint("overfull", nil)
	r.scan(scan.QR, tok)
	r.feedback(fbDeny)
	r.posQuiet()
	ev := r.lastEvent()
	want := fmt.Sprintf("sale refused: the cart has more than %d different items", policy.MaxLines)
	if ev.Decision.Outcome != policy.Deny || len(ev.Request.Lines) != policy.MaxLines || !firedWith(ev.Decision, policy.RangeRuleID, want) {
		t.Fatalf("overfull cart: %s with %d lines, rules %+v", ev.Decision.Outcome, len(ev.Request.Lines), ev.Decision.Rules)
	}
}

func firedWith(d *policy.Decision, id, reason string) bool {
	for _, f := range d.Rules {
		if f.ID == id && f.Reason == reason {
			return true
		}
	}
	return false
}

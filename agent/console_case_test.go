package agent_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/posguard/posguard/agent"
	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/hq/console/consoletest"
	"github.com/posguard/posguard/hq/store"
	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/policy"
	"github.com/posguard/posguard/policy/reason"
)

// The fraud team's page reaches the till: a register refuses a crew
// account's carton sale, HQ opens a case with its alert, an analyst reads
// the alert's reasons in the Cases page as the display words them,
// confirms fraud with a note, and the register then denies the account's
// next sale — any sale — naming the denylist and the case. A viewer sees
// the same case with no verdict controls.
func TestConsoleConfirmRefusesAtRegister(t *testing.T) {
	consoletest.Stores(t, consoletest.Options{}, confirmRefusesAtRegister)
}

func confirmRefusesAtRegister(t *testing.T, c *consoletest.Console) {
	ctx := browsertest.Start(t, 1400, 1000)
	f := newFixture(t)
	// The register trusts the console HQ's list key, under the same kid.
	pub, err := os.ReadFile(c.TrustedKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	f.write("hq1.pub", pub)
	link := c.Agent("S001/R1")
	r := start(t, f.config(link.HQYAML()+"  maxReconnect: 500ms\n"), agent.Options{})
	waitFor(t, "HQ link", func() bool {
		var st agent.Status
		r.do(t, "GET", "/v1/status", nil, &st)
		return st.HQ.Connected
	})

	// The crew's first sale: stopped by the carton cap.
	res, _ := r.decide(t, f.mint("crew-7", nil), line(carton, 3))
	if !slices.Contains(fired(res), "carton-cap") {
		t.Fatalf("crew sale fired %v", fired(res))
	}
	var alert event.Event
	waitFor(t, "HQ to store the alert", func() bool {
		evs, err := c.Store.Events(context.Background(), store.Query{Account: "crew-7", Types: []event.Type{event.Alert}})
		if err != nil || len(evs) == 0 {
			return false
		}
		alert = evs[0]
		return true
	})
	id, err := c.Service.Cases().OpenOrExtend(context.Background(), "crew-7", "S001", alert)
	if err != nil {
		t.Fatal(err)
	}
	caseURL := c.URL + "/console/cases#case=" + id
	// Another open case in the queue: opened by hand, no alerts yet.
	if _, _, err := c.Service.Cases().Open(context.Background(), "crew-8", "S002", "analyst (console)", "same device as crew-7"); err != nil {
		t.Fatal(err)
	}

	browsertest.Run(t, ctx, "viewer opens the case", c.Login("viewer"),
		chromedp.Navigate(caseURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="case-alert"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="case-readonly"]`)))
	if n := browsertest.Get(t, ctx, "verdict controls", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="case-verdict"], [data-testid="case-confirm"]').length`)); n != 0 {
		t.Fatalf("a viewer sees %d verdict controls", n)
	}

	browsertest.Run(t, ctx, "analyst opens the queue and the case", c.Login("analyst"),
		chromedp.Navigate(c.URL+"/console/cases"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="case-row-`+id+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="case-row-`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="case-alert"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="case-sale"]`)))
	// The alert's reasons as the display words them, in Japanese.
	want := reason.Decision(reason.Japanese, *alert.Decision)
	if got := browsertest.Get(t, ctx, "alert", chromedp.Text(chromedp.CSS(`[data-testid="case-alert"]`))); !strings.Contains(got, want[0]) {
		t.Fatalf("alert row %q, want %q", got, want[0])
	}
	if got := browsertest.Get(t, ctx, "sale", chromedp.Text(chromedp.CSS(`[data-testid="case-sale"]`))); !strings.Contains(got, "18,000円") || !strings.Contains(got, "S001") {
		t.Fatalf("sale row %q", got)
	}
	const note = "S002の防犯カメラで同じ人物を確認"
	browsertest.Run(t, ctx, "write a note", chromedp.SendKeys(chromedp.CSS(`[data-testid="case-note"]`), note))
	if strings.HasSuffix(t.Name(), "bolt") {
		consoletest.Screenshot(t, ctx, "cases")
	}
	browsertest.Run(t, ctx, "confirm fraud", chromedp.Click(chromedp.CSS(`[data-testid="case-confirm"]`)))
	browsertest.Get(t, ctx, "the case confirmed", chromedp.Poll[bool](
		`document.querySelector('[data-testid="case-state-badge"]')?.textContent === '不正確定' &&
		 document.querySelector('[data-testid="case-message"]')?.textContent.includes('拒否リスト')`,
		chromedp.WithPollingTimeout(20*time.Second)))

	d, err := c.Service.Cases().Case(context.Background(), id)
	if err != nil || d.State != store.CaseConfirmedFraud || d.History[len(d.History)-1].By != "analyst (console)" || d.History[len(d.History)-1].Note != note {
		t.Fatalf("case %+v %v", d, err)
	}
	// The register refuses the account's next sale, whatever it buys,
	// and says why: the denylist entry the case made.
	waitFor(t, "the confirmed account refused at the register", func() bool {
		res, _ = r.decide(t, f.mint("crew-7", nil), line(onigiri, 1))
		return res.Outcome == policy.Deny && slices.Contains(fired(res), "denylist")
	})
	for _, fr := range res.Decision.Rules {
		if fr.ID == "denylist" && (!strings.Contains(fr.Reason, "case:"+id) || !strings.Contains(fr.Reason, note)) {
			t.Fatalf("denylist reason %q, want the case and the note", fr.Reason)
		}
	}
	if !strings.Contains(res.Message, "case:"+id) {
		t.Fatalf("message %q does not name the case", res.Message)
	}
	// Others still buy.
	if res, _ := r.decide(t, f.mint("someone", nil), line(onigiri, 1)); res.Outcome != policy.Allow {
		t.Fatalf("another account: %s %v", res.Outcome, fired(res))
	}
}

package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/posguard/posguard/internal/browsertest"
	"github.com/posguard/posguard/policy/backtest/gen"
)

func writeHTML(t *testing.T, rep *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// pageData is the JSON the page's script draws from.
func pageData(t *testing.T, page string) chartData {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no report-data script in the page")
	}
	var d chartData
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("report data: %v", err)
	}
	return d
}

func TestWriteHTML(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault)})
	page := writeHTML(t, rep)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var canvases []string
	var external []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			if a.Key == "id" && n.Data == "canvas" {
				canvases = append(canvases, a.Val)
			}
			if (a.Key == "src" || a.Key == "href") && a.Val != "" {
				external = append(external, a.Val)
			}
		}
	}
	if want := []string{"chart-sweep", "chart-yen", "chart-rules", "chart-changes"}; fmt.Sprint(canvases) != fmt.Sprint(want) {
		t.Errorf("canvases %v, want %v", canvases, want)
	}
	if len(external) > 0 {
		t.Errorf("the page refers to %v: it must be self-contained", external)
	}
	for _, want := range []string{
		"Chart.js v4.", // inlined
		`content="default-src 'none'; script-src 'unsafe-inline'`,
		"These decisions carry no risk score, so the sweep is over outcomes only",
		"<td>S014</td><td>R1</td><td>acct-victim-02</td><td class=\"n\">¥100,000</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	d := pageData(t, page)
	if d.Scored || len(d.Sweep) != 2 || d.Sweep[0] != (chartPoint{"review or deny", 11, 2, 295_200, 23_900}) || d.Sweep[1].Name != "deny" {
		t.Errorf("sweep %+v", d.Sweep)
	}
	if len(d.Yen) != 2 || d.Yen[0].FraudDenied != rep.Labels.Policy.FraudDenied.Amount || d.Yen[1].FraudAllowed != rep.Labels.Baseline.FraudAllowed.Amount {
		t.Errorf("yen %+v", d.Yen)
	}
	if len(d.Rules) == 0 || d.Rules[0].ID != "sale-over-10000" || *d.Rules[0].Precision != 0.8462 {
		t.Errorf("rules %+v", d.Rules)
	}
	if len(d.Changes) != 2 || d.Changes[1] != (chartChange{"allow → deny", 7, 0, 0}) {
		t.Errorf("changes %+v", d.Changes)
	}
}

// Names come from events and policies: the page shows them as text.
func TestWriteHTMLEscapes(t *testing.T) {
	rep := run(t, readFixture(t), Options{Policy: load(t, chainDefault)})
	evil := `</script><script>alert(1)</script><img src=x onerror=alert(2)>`
	rep.Changed[0].Account = evil
	rep.Rules[0].ID = evil
	rep.Policy.Name = evil
	page := writeHTML(t, rep)
	if strings.Contains(page, "<img src=x") || strings.Count(page, "<script") != 3 {
		t.Errorf("a name from the input became markup (%d script elements)", strings.Count(page, "<script"))
	}
	if d := pageData(t, page); d.Rules[0].ID != evil {
		t.Errorf("the chart data lost the name: %q", d.Rules[0].ID)
	}
}

func TestWriteHTMLWithoutLabels(t *testing.T) {
	var plain bytes.Buffer
	for _, l := range strings.SplitAfter(string(readFixture(t)), "\n") {
		plain.WriteString(strings.Replace(strings.Replace(l, `,"label":"fraud"`, "", 1), `,"label":"legit"`, "", 1))
	}
	rep := run(t, plain.Bytes(), Options{Policy: load(t, chainDefault)})
	if rep.Labels != nil {
		t.Fatal("labels left in the events")
	}
	page := writeHTML(t, rep)
	if !strings.Contains(page, `id="no-labels"`) || strings.Contains(page, `id="card-fraud"`) {
		t.Error("no warning about the missing labels, or fraud figures without labels")
	}
	if d := pageData(t, page); len(d.Sweep)+len(d.Yen)+len(d.Rules) != 0 || len(d.Changes) != 2 {
		t.Errorf("data without labels: %+v", d)
	}
}

// TestHTMLReportInChromium opens the report of the example policy (with
// scores) on a generated month in a real browser, from disk, and checks
// that each chart drew: Chart.js ran under the page's Content Security
// Policy, made a chart on every canvas and painted it; the sweep is over
// scores, and the held sales show their reasons in Japanese. With -update
// it writes the screenshot committed as testdata/report.png.
func TestHTMLReportInChromium(t *testing.T) {
	ctx := browsertest.Start(t, 1400, 1000)
	var events, labels bytes.Buffer
	cfg := gen.Config{Seed: 1, Start: time.Date(2026, 7, 1, 0, 0, 0, 0, gen.Zone), Days: 30, Stores: 6, RegistersPerStore: 2, SalesPerStoreDay: 40}
	if _, err := gen.Generate(context.Background(), cfg, &events, &labels); err != nil {
		t.Fatal(err)
	}
	truth, err := ReadGroundTruth(&labels)
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, events.Bytes(), Options{Policy: load(t, scored), Truth: truth})
	if rep.Sweep == nil || rep.Sweep.By != "score" || len(rep.Held) == 0 {
		t.Fatalf("the example policy's report has no score sweep or no held sales: %+v, %d held", rep.Sweep, len(rep.Held))
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, []byte(writeHTML(t, rep)), 0o600); err != nil {
		t.Fatal(err)
	}

	browsertest.Run(t, ctx, "open the report", chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
	type drawn struct {
		ID      string
		Chart   bool
		Points  int
		Painted float64
	}
	charts := browsertest.Get(t, ctx, "inspect the charts", chromedp.Evaluate[[]drawn](`
		[...document.querySelectorAll("canvas")].map((c) => {
			const chart = Chart.getChart(c);
			const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
			let painted = 0;
			for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
			return { ID: c.id, Chart: !!chart, Points: chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0,
				Painted: painted / (px.length / 4) };
		})`))
	if len(charts) != 4 {
		t.Fatalf("%d canvases", len(charts))
	}
	for _, c := range charts {
		t.Logf("%s: %d points, %.1f%% of the canvas painted", c.ID, c.Points, 100*c.Painted)
		if !c.Chart || c.Points == 0 || c.Painted < 0.02 {
			t.Errorf("%s did not draw: %+v", c.ID, c)
		}
	}
	if n := browsertest.Get(t, ctx, "count rule rows", chromedp.Evaluate[int](`document.querySelectorAll("#rules tbody tr").length`)); n != len(rep.Rules) {
		t.Errorf("%d rule rows, want %d", n, len(rep.Rules))
	}
	// The largest held sale's reasons, as the page shows them: in
	// Japanese, one line each, and marked as such for fonts and readers.
	type cell struct {
		Lang  string
		Lines []string
	}
	held := browsertest.Get(t, ctx, "read the held sales' reasons", chromedp.Evaluate[cell](`(() => {
		const td = document.querySelectorAll("table.sales")[1].querySelector("tbody tr td.reasons");
		return { Lang: td.lang, Lines: [...td.querySelectorAll("div")].map((d) => d.textContent) };
	})()`))
	if held.Lang != "ja" || fmt.Sprint(held.Lines) != fmt.Sprint(rep.Held[0].Reasons) || !strings.Contains(strings.Join(held.Lines, ""), "上限") {
		t.Errorf("the largest held sale's reasons on the page: %+v, want %q in Japanese", held, rep.Held[0].Reasons)
	}
	shot := browsertest.Get(t, ctx, "screenshot", chromedp.Screenshot(chromedp.CSS("#overview")))
	if len(shot) < 10_000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "report.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package backtest

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/posguard/posguard/internal/webassets"
)

//go:embed report.html.tmpl
var reportTemplate string

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"yen":   Yen,
	"pct":   pct,
	"add":   func(a, b int) int { return a + b },
	"add64": func(a, b int64) int64 { return a + b },
	"time":  func(t time.Time) string { return t.Format("2006-01-02 15:04") },
	"join":  strings.Join,
	// sales hands a list of sales and their reasons' language to the
	// "sales" table.
	"sales": func(lang string, s []ChangedSale) salesTable { return salesTable{Lang: lang, Sales: s} },
}).Parse(reportTemplate))

type salesTable struct {
	Lang  string
	Sales []ChangedSale
}

// htmlPage is what the template reads: the report, and the figures its
// charts draw, as the JSON the page's script reads.
type htmlPage struct {
	Rep            *Report
	First, Last    string
	Labelled       bool
	Scored         bool
	Changed        int
	ChartJS        template.JS
	ChartJSVersion string
	Data           chartData
}

type chartData struct {
	Scored     bool          `json:"scored"`
	FraudSales int           `json:"fraudSales"`
	LegitSales int           `json:"legitSales"`
	Sweep      []chartPoint  `json:"sweep"`
	Yen        []chartYen    `json:"yen"`
	Rules      []chartRule   `json:"rules"`
	Changes    []chartChange `json:"changes"`
}

type chartPoint struct {
	Name        string `json:"name"`
	Fraud       int    `json:"fraud"`
	Legit       int    `json:"legit"`
	FraudAmount int64  `json:"fraudAmount"`
	LegitAmount int64  `json:"legitAmount"`
}

type chartYen struct {
	Side          string `json:"side"`
	FraudDenied   int64  `json:"fraudDenied"`
	FraudReviewed int64  `json:"fraudReviewed"`
	FraudAllowed  int64  `json:"fraudAllowed"`
	LegitDenied   int64  `json:"legitDenied"`
	LegitReviewed int64  `json:"legitReviewed"`
}

type chartRule struct {
	ID        string   `json:"id"`
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
}

type chartChange struct {
	Name       string `json:"name"`
	Fraud      int    `json:"fraud"`
	Legit      int    `json:"legit"`
	Unlabelled int    `json:"unlabelled"`
}

// WriteHTML writes the report as one self-contained HTML page (`policy
// test --html`): summary cards, four charts drawn by Chart.js, which is
// inlined (the page loads nothing from the network; a Content Security
// Policy forbids it), and the rule and changed-decision tables. The charts
// are the threshold sweep (fraud stopped against honest sales touched),
// yen stopped against honest yen held for the policy and the baseline,
// per-rule precision and recall, and the changed decisions by label; the
// largest changed and held sales are listed with their reasons in the
// report's language.
func WriteHTML(w io.Writer, rep *Report) error {
	page := htmlPage{
		Rep:            rep,
		Labelled:       rep.Labels != nil,
		ChartJS:        template.JS(webassets.ChartJSInline()),
		ChartJSVersion: webassets.ChartJSVersion,
		Data:           chartData{Sweep: []chartPoint{}, Yen: []chartYen{}, Rules: []chartRule{}, Changes: []chartChange{}},
	}
	if !rep.First.IsZero() {
		page.First, page.Last = rep.First.Format("2006-01-02 15:04"), rep.Last.Format("2006-01-02 15:04")
	}
	d := &page.Data
	if sw := rep.Sweep; sw != nil {
		page.Scored = sw.By == "score"
		for _, p := range sw.Points {
			d.Sweep = append(d.Sweep, chartPoint{Name: p.Name, Fraud: p.FraudStopped.Sales, Legit: p.LegitTouched.Sales,
				FraudAmount: p.FraudStopped.Amount, LegitAmount: p.LegitTouched.Amount})
		}
	}
	d.Scored = page.Scored
	if l := rep.Labels; l != nil {
		d.FraudSales, d.LegitSales = l.Fraud.Sales, l.Legit.Sales
		for _, side := range []struct {
			name string
			s    Score
		}{{"policy " + rep.Policy.Name, l.Policy}, {"baseline: " + rep.Baseline.String(), l.Baseline}} {
			d.Yen = append(d.Yen, chartYen{Side: side.name, FraudDenied: side.s.FraudDenied.Amount, FraudReviewed: side.s.FraudReviewed.Amount,
				FraudAllowed: side.s.FraudAllowed.Amount, LegitDenied: side.s.LegitDenied.Amount, LegitReviewed: side.s.LegitReviewed.Amount})
		}
		for _, r := range rep.Rules {
			if r.Fraud.Sales+r.Legit.Sales > 0 {
				d.Rules = append(d.Rules, chartRule{ID: r.ID, Precision: r.Precision, Recall: r.Recall})
			}
		}
	}
	for _, t := range rep.Transitions {
		page.Changed += t.Sales
		d.Changes = append(d.Changes, chartChange{Name: fmt.Sprintf("%s → %s", t.From, t.To), Fraud: t.Fraud, Legit: t.Legit,
			Unlabelled: t.Sales - t.Fraud - t.Legit})
	}
	if err := htmlReport.Execute(w, page); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

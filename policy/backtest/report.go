package backtest

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON, the machine format of
// `posguard policy test --json`. "<" and ">" in reasons stay readable.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("encode backtest report: %w", err)
	}
	return nil
}

// WriteTable writes the report for people: a summary, then aligned tables
// of outcomes, changed decisions, rules and (with labels) the scores.
func WriteTable(w io.Writer, rep *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "policy %s v%d against %s\n", rep.Policy.Name, rep.Policy.Version, rep.Baseline)
	in := rep.Input
	fmt.Fprintf(b, "input: %d lines, %d decisions replayed, %d bad lines", in.Lines, in.Decisions, in.Bad)
	if len(in.Skipped) > 0 {
		types := make([]string, 0, len(in.Skipped))
		for t := range in.Skipped {
			types = append(types, t)
		}
		sort.Strings(types)
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d %s", in.Skipped[t], t)
		}
		fmt.Fprintf(b, ", skipped %s", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	for _, bl := range in.BadLines {
		fmt.Fprintf(b, "  line %d: %s\n", bl.Line, bl.Reason)
	}
	if in.Bad > len(in.BadLines) {
		fmt.Fprintf(b, "  ... and %d more bad lines\n", in.Bad-len(in.BadLines))
	}
	if !rep.First.IsZero() {
		fmt.Fprintf(b, "sales: %s to %s\n", rep.First.UTC().Format(time.RFC3339), rep.Last.UTC().Format(time.RFC3339))
	}

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	b.WriteString("\noutcomes\n")
	fmt.Fprintf(tw, "\tallow\treview\tdeny\t\n")
	fmt.Fprintf(tw, "policy\t%d\t%d\t%d\t\n", rep.Outcomes.Allow, rep.Outcomes.Review, rep.Outcomes.Deny)
	fmt.Fprintf(tw, "baseline\t%d\t%d\t%d\t\n", rep.BaselineOutcomes.Allow, rep.BaselineOutcomes.Review, rep.BaselineOutcomes.Deny)
	tw.Flush()

	fmt.Fprintf(b, "\nchanged decisions (%d unchanged)\n", rep.Unchanged)
	if len(rep.Transitions) == 0 {
		b.WriteString("  none\n")
	} else {
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "baseline → policy\tsales\tamount\tfraud\tlegit\t\n")
		for _, t := range rep.Transitions {
			fmt.Fprintf(tw, "%s → %s\t%d\t%s\t%d\t%d\t\n", t.From, t.To, t.Sales, Yen(t.Amount), t.Fraud, t.Legit)
		}
		tw.Flush()
	}

	writeSales(b, fmt.Sprintf("largest changed sales (%d of %d)", min(len(rep.Changed), TableSales), rep.changedCount()), rep.Changed)
	writeSales(b, fmt.Sprintf("largest sales held for review (%d of %d)", min(len(rep.Held), TableSales), rep.Outcomes.Review), rep.Held)

	b.WriteString("\nrules\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	labelled := rep.Labels != nil
	hdr := "id\tkind\taction\tmode\tfires\tshadow\tbaseline\tallow\treview\tdeny\t"
	if labelled {
		hdr += "fraud\tfraud ¥\tlegit\tlegit ¥\tprecision\trecall\t"
	}
	fmt.Fprintln(tw, hdr)
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t", r.ID, r.Kind, dash(r.Action), dash(r.Mode),
			r.Fires(), r.Shadow, r.BaselineFires, r.Outcomes.Allow, r.Outcomes.Review, r.Outcomes.Deny)
		if labelled {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t", r.Fraud.Sales, Yen(r.Fraud.Amount), r.Legit.Sales, Yen(r.Legit.Amount), pct(r.Precision), pct(r.Recall))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	if g := rep.GroundTruth; g != nil {
		fmt.Fprintf(b, "\nlabels file: %d accounts (%d fraud, %d legit), %d of them in these events; %d sales labelled, %d made before their label's time (not scored)\n",
			g.Accounts, g.Fraud, g.Legit, g.Seen, g.Sales, g.BeforeAt)
	}
	if l := rep.Labels; l != nil {
		fmt.Fprintf(b, "\nlabelled sales: %d fraud (%s), %d legit (%s)\n", l.Fraud.Sales, Yen(l.Fraud.Amount), l.Legit.Sales, Yen(l.Legit.Amount))
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "\tpolicy\t\tbaseline\t\t\n")
		row := func(name string, p, q Tally) {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t\n", name, p.Sales, Yen(p.Amount), q.Sales, Yen(q.Amount))
		}
		row("fraud denied", l.Policy.FraudDenied, l.Baseline.FraudDenied)
		row("fraud reviewed", l.Policy.FraudReviewed, l.Baseline.FraudReviewed)
		row("fraud allowed", l.Policy.FraudAllowed, l.Baseline.FraudAllowed)
		row("legit denied", l.Policy.LegitDenied, l.Baseline.LegitDenied)
		row("legit reviewed", l.Policy.LegitReviewed, l.Baseline.LegitReviewed)
		fmt.Fprintf(tw, "precision\t%s\t\t%s\t\t\n", pct(l.Policy.Precision), pct(l.Baseline.Precision))
		fmt.Fprintf(tw, "recall\t%s\t\t%s\t\t\n", pct(l.Policy.Recall), pct(l.Baseline.Recall))
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write backtest report: %w", err)
	}
	return nil
}

// TableSales bounds the sales each list of the table shows (the JSON and
// the HTML page list all the report keeps, MaxChanged).
const TableSales = 20

// writeSales lists the first TableSales sales, each with its fired rules'
// reasons beneath it, in the report's language.
func writeSales(b *strings.Builder, title string, sales []ChangedSale) {
	if len(sales) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s\n", title)
	for _, s := range sales[:min(len(sales), TableSales)] {
		label := s.Label
		if label == "" {
			label = "unlabelled"
		}
		fmt.Fprintf(b, "  %s  %s/%s  %s  %s  %s → %s  %s\n", s.At.UTC().Format("2006-01-02 15:04"), s.Store, s.Register,
			s.Account, Yen(s.Amount), s.From, s.To, label)
		for _, r := range s.Reasons {
			fmt.Fprintf(b, "      · %s\n", r)
		}
	}
}

// changedCount is how many sales changed, of which Changed lists the
// largest.
func (rep *Report) changedCount() int {
	n := 0
	for _, t := range rep.Transitions {
		n += t.Sales
	}
	return n
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

// Yen formats an amount as "¥90,400".
func Yen(v int64) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	s := strconv.FormatUint(u, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString("¥")
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

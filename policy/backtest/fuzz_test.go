package backtest

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the JSONL reader and the replay: they
// must never panic, every non-blank line is either replayed, skipped or
// reported bad with a reason, and the report renders.
func FuzzRead(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzRead; these add the fixture's lines.
	for _, line := range bytes.SplitAfter(readFixture(f), []byte("\n"))[:4] {
		f.Add(line)
	}
	p := load(f, chainDefault)
	f.Fuzz(func(t *testing.T, data []byte) {
		sales, in, err := Read(context.Background(), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatalf("read from memory failed: %v", err)
		}
		nonBlank := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				nonBlank++
			}
		}
		skipped := 0
		for _, n := range in.Skipped {
			skipped += n
		}
		if in.Decisions != len(sales) || in.Decisions+skipped+in.Bad != nonBlank {
			t.Fatalf("%d decisions + %d skipped + %d bad != %d non-blank lines", in.Decisions, skipped, in.Bad, nonBlank)
		}
		for _, b := range in.BadLines {
			if b.Reason == "" || b.Line < 1 || b.Line > in.Lines {
				t.Fatalf("bad line without reason or with a wrong number: %+v", b)
			}
		}
		for i := 1; i < len(sales); i++ {
			if sales[i].Request.At.Before(sales[i-1].Request.At) {
				t.Fatalf("sales not in time order at %d", i)
			}
		}
		rep, err := Replay(context.Background(), sales, Options{Policy: p, Baseline: p})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Transitions) != 0 {
			t.Fatalf("a policy against itself changed decisions: %+v", rep.Transitions)
		}
		rep.Input = in
		var out bytes.Buffer
		if err := WriteTable(&out, rep); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&out, rep); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzGroundTruth reads arbitrary bytes as a labels file and, when they
// are accepted, scores the 7pay fixture against them: labelling never
// panics, every sale is scored once at most, and the sweep agrees with
// the labelled score.
func FuzzGroundTruth(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzGroundTruth.
	data := readFixture(f)
	p := load(f, chainDefault)
	sales, _, err := Read(context.Background(), bytes.NewReader(data), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, labels []byte) {
		g, err := ReadGroundTruth(bytes.NewReader(labels))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "read labels: line ") {
				t.Fatalf("rejection without its line: %v", err)
			}
			return
		}
		rep, err := Replay(context.Background(), slices.Clone(sales), Options{Policy: p, Truth: g})
		if err != nil {
			t.Fatal(err)
		}
		gt := rep.GroundTruth
		if gt == nil || gt.Accounts != g.Len() || gt.Fraud+gt.Legit != gt.Accounts || gt.Seen > gt.Accounts || gt.Sales+gt.BeforeAt > len(sales) {
			t.Fatalf("ground truth stats %+v for %d accounts and %d sales", gt, g.Len(), len(sales))
		}
		l := rep.Labels
		if l == nil {
			if rep.Sweep != nil {
				t.Fatal("a sweep without labelled sales")
			}
			return
		}
		if l.Fraud.Sales+l.Legit.Sales > len(sales) {
			t.Fatalf("%d labelled sales of %d", l.Fraud.Sales+l.Legit.Sales, len(sales))
		}
		s, review := l.Policy, rep.Sweep.Points[0]
		if review.FraudStopped.Sales != s.FraudDenied.Sales+s.FraudReviewed.Sales || review.LegitTouched.Sales != s.LegitDenied.Sales+s.LegitReviewed.Sales {
			t.Fatalf("sweep %+v disagrees with the score %+v", review, s)
		}
		var out bytes.Buffer
		if err := WriteHTML(&out, rep); err != nil {
			t.Fatal(err)
		}
	})
}

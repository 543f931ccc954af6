package backtest

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkBacktest replays a synthetic chain's events (read, parse, sort,
// evaluate with the example policy, compare with the recorded decisions):
// ns/op is the time for the whole file, events/s the throughput.
func BenchmarkBacktest(b *testing.B) {
	for _, n := range []struct {
		name   string
		events int
	}{{"events=10k", 10_000}, {"events=1M", 1_000_000}} {
		b.Run(n.name, func(b *testing.B) {
			data := synthetic(b, n.events)
			p := load(b, chainDefault)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for b.Loop() {
				rep, err := Run(context.Background(), bytes.NewReader(data), Options{Policy: p})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Input.Decisions != n.events {
					b.Fatalf("%d of %d replayed", rep.Input.Decisions, n.events)
				}
			}
			b.ReportMetric(float64(n.events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRead is the parsing part alone.
func BenchmarkRead(b *testing.B) {
	data := synthetic(b, 10_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Read(context.Background(), bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10_000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplay is the decision part alone: ns/op per sale.
func BenchmarkReplay(b *testing.B) {
	sales, _, err := Read(context.Background(), bytes.NewReader(synthetic(b, 10_000)), nil)
	if err != nil {
		b.Fatal(err)
	}
	p := load(b, chainDefault)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Replay(context.Background(), sales, Options{Policy: p}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10_000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// Package scanlat measures scan pass-through latency as percentiles: a
// barcode from the simulated scanner's pty, through the scanner link, the
// agent's forwarding and the POS link, to the simulated POS's pty.
package scanlat

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/posout"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/sim"
)

// BenchmarkScanPassThrough sends one item scan at a time and times each
// from the scanner writing it to the POS having all of it: ns/op is the
// mean, p50-ns and p99-ns the percentiles over the run.
func BenchmarkScanPassThrough(b *testing.B) {
	for _, mode := range []sim.Mode{sim.ModeLine, sim.ModeSSI} {
		b.Run(string(mode), func(b *testing.B) { bench(b, mode) })
	}
}

func bench(b *testing.B, mode sim.Mode) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
	s, err := sim.New(sim.Options{Mode: mode, Framing: f})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	far, err := sim.NewPOS("")
	if err != nil {
		b.Fatal(err)
	}
	defer far.Close()
	log := slog.New(slog.DiscardHandler)
	sc, err := scanner.New(scanner.Config{Config: serialport.Config{Port: s.Path()}, Mode: scanner.Mode(mode), Framing: f}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	pos, err := posout.New(posout.Config{Config: serialport.Config{Port: far.Path()}, Framing: line.Framing{Suffix: line.Bytes("\r")}}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan scan.Scan, 16)
	go sc.Run(ctx, out)
	go pos.Run(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case x := <-out:
				if err := pos.Send(x); err != nil {
					b.Error(err)
				}
			}
		}
	}()
	if err := far.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	for !pos.Up() {
		time.Sleep(time.Millisecond)
	}
	data := []byte("4901234200012")
	want := len(data) + 1
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := s.Scan(ctx, scan.EAN13, data); err != nil {
			b.Fatal(err)
		}
		if _, err := far.Next(ctx, want); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

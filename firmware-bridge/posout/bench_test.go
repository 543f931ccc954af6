package posout_test

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

// BenchmarkFramerToPOSFraming is the CPU cost per scan of the agent's part
// of the path: cut the frame from the scanner stream, frame it for the POS.
func BenchmarkFramerToPOSFraming(b *testing.B) {
	in := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
	out := line.Framing{Prefix: line.Bytes("\x02"), Suffix: line.Bytes("\r"), AIM: true}
	frame := in.Append(nil, scan.Scan{Data: []byte("4901234567894"), Symbology: scan.EAN13})
	var buf []byte
	fr := line.NewFramer(in, func(s scan.Scan) { buf = out.Append(buf[:0], s) }, nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		fr.Feed(frame, now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}

type pipeline struct {
	sim *sim.Sim
	far *sim.POS
	sc  *scanner.Scanner
	pos *posout.POS
	out chan scan.Scan
	ctx context.Context
}

// newPipeline wires simulator pty → Scanner → POS → POS pty, as the agent
// does, with a forwarding goroutine standing in for the agent.
func newPipeline(b *testing.B, mode sim.Mode) *pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
	s, err := sim.New(sim.Options{Mode: mode, Framing: f})
	if err != nil {
		b.Fatal(err)
	}
	far, err := sim.NewPOS("")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sc, err := scanner.New(scanner.Config{Config: serialport.Config{Port: s.Path()}, Mode: scanner.Mode(mode), Framing: f}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	pos, err := posout.New(posout.Config{Config: serialport.Config{Port: far.Path()}, Framing: line.Framing{Suffix: line.Bytes("\r")}}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &pipeline{sim: s, far: far, sc: sc, pos: pos, out: make(chan scan.Scan, 1024), ctx: ctx}
	go sc.Run(ctx, p.out)
	go pos.Run(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sc := <-p.out:
				if err := pos.Send(sc); err != nil {
					b.Error(err)
				}
			}
		}
	}()
	b.Cleanup(func() { cancel(); s.Close(); far.Close() })
	if err := far.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	for !pos.Up() {
		time.Sleep(time.Millisecond)
	}
	return p
}

// BenchmarkPipelineLatency is one scan at a time from the scanner pty to
// the POS pty: ns/op is the end-to-end latency, two pty hops included (in
// SSI mode also the DECODE_DATA/CMD_ACK round trip the simulated scanner
// waits for before the next scan).
func BenchmarkPipelineLatency(b *testing.B) {
	for _, mode := range []sim.Mode{sim.ModeLine, sim.ModeSSI} {
		b.Run(string(mode), func(b *testing.B) { benchLatency(b, mode) })
	}
}

// ns/op is the mean; p50-ns and p99-ns are the percentiles over the run.
func benchLatency(b *testing.B, mode sim.Mode) {
	p := newPipeline(b, mode)
	want := len("4901234567894\r")
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if err := p.sim.Scan(p.ctx, scan.EAN13, []byte("4901234567894")); err != nil {
			b.Fatal(err)
		}
		if _, err := p.far.Next(p.ctx, want); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(float64(len(lat)-1)*q)].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// BenchmarkPipelineThroughput keeps 64 scans in flight: scans/s through
// the whole path.
func BenchmarkPipelineThroughput(b *testing.B) {
	p := newPipeline(b, sim.ModeLine)
	want := len("4901234567894\r")
	sent, got := 0, 0
	for b.Loop() {
		for sent-got < 64 {
			if err := p.sim.Scan(p.ctx, scan.EAN13, []byte("4901234567894")); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		if _, err := p.far.Next(p.ctx, want); err != nil {
			b.Fatal(err)
		}
		got++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
}

// BenchmarkPOSSend is the agent's cost of handing one scan to the POS: the
// framing and the write to a real pty.
func BenchmarkPOSSend(b *testing.B) {
	p := newPipeline(b, sim.ModeLine)
	s := scan.Scan{Data: []byte("4901234567894"), Symbology: scan.EAN13}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.pos.Send(s); err != nil {
			b.Fatal(err)
		}
		p.far.Take() // keep the collected bytes from growing
	}
}

package reliability

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/posguard/posguard/firmware-bridge/line"
	"github.com/posguard/posguard/firmware-bridge/posout"
	"github.com/posguard/posguard/firmware-bridge/scan"
	"github.com/posguard/posguard/firmware-bridge/scanner"
	"github.com/posguard/posguard/firmware-bridge/serialport"
	"github.com/posguard/posguard/firmware-bridge/sim"
)

// TestReliabilitySerialUnplug unplugs the scanner's serial port five times
// while scans flow from a simulated scanner (a real pty) through the
// scanner link and the POS link to a simulated POS. A scan the scanner
// counted as sent must reach the POS exactly once. In SSI mode "sent"
// means the agent ACKed the decode; in line mode, where a scanner gets no
// acknowledgement, it means the bytes were written before the unplug, and
// a frame cut by the unplug is what a real USB unplug loses too: the
// test reports those separately and requires them to be at most one per
// unplug.
func TestReliabilitySerialUnplug(t *testing.T) {
	need(t)
	for _, mode := range []sim.Mode{sim.ModeSSI, sim.ModeLine} {
		t.Run(string(mode), func(t *testing.T) { serialUnplug(t, mode) })
	}
}

func serialUnplug(t *testing.T, mode sim.Mode) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := line.Framing{Suffix: line.Bytes("\r\n"), AIM: true}
	s, err := sim.New(sim.Options{Mode: mode, Framing: f})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	far, err := sim.NewPOS("")
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	log := slog.New(slog.DiscardHandler)
	sc, err := scanner.New(scanner.Config{Config: serialport.Config{Port: s.Path(), ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond},
		Mode: scanner.Mode(mode), Framing: f}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := posout.New(posout.Config{Config: serialport.Config{Port: far.Path()}, Framing: line.Framing{Suffix: line.Bytes("\r")}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan scan.Scan, 1024)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); sc.Run(ctx, out) }()
	go func() { defer wg.Done(); pos.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case x := <-out:
				if err := pos.Send(x); err != nil {
					t.Errorf("send to POS: %v", err)
				}
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	if err := far.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// Load: scans one after another, as fast as the link takes them.
	stop := make(chan struct{})
	var sent []string
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := fmt.Sprintf("SCAN%06d", i)
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.Scan(sctx, scan.Code128, []byte(data))
			scancel()
			if err == nil {
				sent = append(sent, data)
			}
		}
	}()
	const unplugs = 5
	for range unplugs {
		time.Sleep(300 * time.Millisecond)
		if err := s.Unplug(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if err := s.Replug(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-loadDone

	// Everything sent must arrive; give the links a moment to drain.
	got := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, f := range bytes.Split(far.Take(), []byte("\r")) {
			if len(f) > 0 {
				got[string(f)]++
			}
		}
		missing := 0
		for _, d := range sent {
			if got[d] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lost []string
	dups := 0
	for _, d := range sent {
		if got[d] == 0 {
			lost = append(lost, d)
		}
		if got[d] > 1 {
			dups++
		}
	}
	fmt.Printf("%s\n  tried: %d scans sent (%s mode) while the scanner port was unplugged %d times (0.2 s each)\n  received at the POS: %d distinct, duplicates: %d\n  lost: %d %v\n",
		t.Name(), len(sent), mode, unplugs, len(got), dups, len(lost), lost)
	if dups > 0 {
		t.Errorf("%d scans reached the POS more than once", dups)
	}
	switch {
	case mode == sim.ModeSSI && len(lost) > 0:
		t.Errorf("%d ACKed scans never reached the POS: %v", len(lost), lost)
	case len(lost) > unplugs:
		t.Errorf("%d scans lost in %d unplugs: more than the one frame in flight each", len(lost), unplugs)
	}
}

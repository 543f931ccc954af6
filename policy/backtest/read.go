package backtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// Sale is one recorded decision event reduced to what a replay needs.
type Sale struct {
	// Line is the 1-based line of the event in the input, for messages and
	// as the tie-break that keeps the time sort stable.
	Line    int
	EventID string
	Request policy.Request
	// Recorded is the outcome the register gave at the time, and
	// RecordedRules the ids of the rules that fired then.
	Recorded      policy.Outcome
	RecordedRules []string
	// Label is "fraud", "legit" or empty (unknown).
	Label string
}

// Amount is the sale total in yen.
func (s *Sale) Amount() int64 {
	var a int64
	for i := range s.Request.Lines {
		l := &s.Request.Lines[i]
		a += int64(l.Quantity) * l.UnitPrice
	}
	return a
}

// BadLine is an input line that could not be used, and why.
type BadLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Input counts what the reader saw.
type Input struct {
	// Lines is every line read, blank ones included.
	Lines int `json:"lines"`
	// Decisions is the number of decision events replayed.
	Decisions int `json:"decisions"`
	// Skipped counts the valid events of other types (alerts duplicate
	// decisions; resolutions and refusals are not sales), by type.
	Skipped map[string]int `json:"skipped"`
	// Bad counts unusable lines; BadLines lists the first MaxBadLines.
	Bad      int       `json:"bad"`
	BadLines []BadLine `json:"badLines"`
}

// MaxBadLines bounds how many bad lines a report lists (all are counted):
// a wrong file should not produce a million-line report.
const MaxBadLines = 50

// maxLine is the longest line read: an event is at most event.MaxSize
// bytes, plus the newline.
const maxLine = event.MaxSize + 1

// chunkLines is how many lines a parse worker takes at once: large enough
// that channel traffic is noise, small enough to spread work evenly.
const chunkLines = 512

type rawLine struct {
	n    int
	data []byte // nil: the line was too long (tooLong bytes)
	long int
}

type chunk struct {
	idx   int
	lines []rawLine
	buf   []byte // holds the lines' bytes
}

// chunkBytes is the size of a chunk's line buffer: about chunkLines
// lines of a few hundred bytes.
const chunkBytes = 256 << 10

type parsed struct {
	idx     int
	sales   []Sale
	skipped map[string]int
	bad     []BadLine
}

// Read parses a JSONL stream of events (the agent's outbox format and HQ's
// GET /v1/events?format=jsonl export) and returns the decision events in
// time order: by Request.At, ties in input order. Each line is parsed as
// strictly as HQ ingests it (event.Parse); a bad line is counted and
// described, and reading goes on. Parsing is spread over the available
// CPUs; progress, when not nil, is called with the number of lines read so
// far every few thousand lines.
func Read(ctx context.Context, r io.Reader, progress func(lines int)) ([]Sale, Input, error) {
	in := Input{Skipped: map[string]int{}, BadLines: []BadLine{}}
	workers := runtime.GOMAXPROCS(0)
	chunks := make(chan chunk, workers)
	results := make(chan parsed, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				results <- parseChunk(c)
			}
		}()
	}
	var byChunk []parsed
	collected := make(chan struct{})
	go func() {
		for p := range results {
			byChunk = append(byChunk, p)
		}
		close(collected)
	}()

	readErr := split(ctx, r, chunks, progress, &in.Lines)
	close(chunks)
	wg.Wait()
	close(results)
	<-collected
	if readErr != nil {
		return nil, in, readErr
	}

	slices.SortFunc(byChunk, func(a, b parsed) int { return a.idx - b.idx })
	n := 0
	for _, p := range byChunk {
		n += len(p.sales)
	}
	sales := make([]Sale, 0, n)
	for _, p := range byChunk {
		sales = append(sales, p.sales...)
		for t, c := range p.skipped {
			in.Skipped[t] += c
		}
		for _, b := range p.bad {
			in.Bad++
			if len(in.BadLines) < MaxBadLines {
				in.BadLines = append(in.BadLines, b)
			}
		}
	}
	in.Decisions = len(sales)
	return sortByTime(sales), in, nil
}

// sortByTime orders sales by request time, ties in input order. An export
// already in time order (HQ's is) costs one pass; otherwise indexes are
// sorted rather than the large Sale values, which are then moved once.
func sortByTime(sales []Sale) []Sale {
	sorted := true
	for i := 1; i < len(sales) && sorted; i++ {
		sorted = !sales[i].Request.At.Before(sales[i-1].Request.At)
	}
	if sorted {
		return sales
	}
	byTime := func(a, b *Sale) int { return a.Request.At.Compare(b.Request.At) }
	idx := make([]int, len(sales))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return byTime(&sales[a], &sales[b]) })
	out := make([]Sale, len(sales))
	for i, j := range idx {
		out[i] = sales[j]
	}
	return out
}

// split cuts r into lines and hands them to the workers in chunks. Lines
// longer than maxLine are not buffered whole: their rest is skipped.
func split(ctx context.Context, r io.Reader, out chan<- chunk, progress func(int), lines *int) error {
	br := bufio.NewReaderSize(r, maxLine)
	c := chunk{lines: make([]rawLine, 0, chunkLines)}
	send := func() error {
		if len(c.lines) == 0 {
			return nil
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return fmt.Errorf("read events: %w", ctx.Err())
		}
		if progress != nil {
			progress(*lines)
		}
		c = chunk{idx: c.idx + 1, lines: make([]rawLine, 0, chunkLines)}
		return nil
	}
	for {
		data, err := br.ReadSlice('\n')
		if len(data) == 0 && errors.Is(err, io.EOF) {
			break
		}
		*lines++
		rl := rawLine{n: *lines}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			rl.long = len(data)
			for errors.Is(err, bufio.ErrBufferFull) {
				data, err = br.ReadSlice('\n')
				rl.long += len(data)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read events line %d: %w", rl.n, err)
			}
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("read events line %d: %w", rl.n, err)
		default:
			// ReadSlice's buffer is reused by the next read: the line is
			// copied into the chunk's buffer, one allocation for many
			// lines (the decoded sales copy what they keep).
			if cap(c.buf)-len(c.buf) < len(data) {
				c.buf = make([]byte, 0, max(chunkBytes, len(data)))
			}
			start := len(c.buf)
			c.buf = append(c.buf, data...)
			rl.data = c.buf[start:len(c.buf):len(c.buf)]
		}
		c.lines = append(c.lines, rl)
		if len(c.lines) == chunkLines {
			if err := send(); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return send()
}

func parseChunk(c chunk) parsed {
	p := parsed{idx: c.idx, skipped: map[string]int{}, sales: make([]Sale, 0, len(c.lines))}
	for _, rl := range c.lines {
		if rl.data == nil {
			p.bad = append(p.bad, BadLine{Line: rl.n, Reason: fmt.Sprintf("line is %d bytes, longer than the %d an event may be", rl.long, event.MaxSize)})
			continue
		}
		data := bytes.TrimSpace(rl.data)
		if len(data) == 0 {
			continue
		}
		s, typ, err := parseLine(data)
		switch {
		case err != nil:
			p.bad = append(p.bad, BadLine{Line: rl.n, Reason: err.Error()})
		case typ != event.Decision:
			p.skipped[string(typ)]++
		default:
			s.Line = rl.n
			p.sales = append(p.sales, s)
		}
	}
	return p
}

// parseLine decodes one event at least as strictly as HQ's ingest
// (event.Parse), so a backtest never scores a record HQ would have refused:
// size limit, unknown fields, trailing data and event.Validate. It uses the
// JSON v2 decoder, which parses these events 2-3 times faster than
// encoding/json and is stricter still: member names must match exactly and
// appear once, strings must be valid UTF-8. Registers write none of those.
func parseLine(data []byte) (Sale, event.Type, error) {
	if len(data) > event.MaxSize {
		return Sale{}, "", fmt.Errorf("parse event: %d bytes exceeds the limit of %d", len(data), event.MaxSize)
	}
	var ev event.Event
	if err := jsonv2.Unmarshal(data, &ev, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Sale{}, "", fmt.Errorf("parse event: %w", err)
	}
	if err := ev.Validate(); err != nil {
		return Sale{}, "", fmt.Errorf("parse event %q: %w", ev.ID, err)
	}
	if ev.Type != event.Decision {
		return Sale{}, ev.Type, nil
	}
	s := Sale{EventID: ev.ID, Request: *ev.Request, Recorded: ev.Decision.Outcome, Label: ev.Label}
	if len(ev.Decision.Rules) > 0 {
		s.RecordedRules = make([]string, len(ev.Decision.Rules))
		for i, f := range ev.Decision.Rules {
			s.RecordedRules[i] = f.ID
		}
	}
	return s, ev.Type, nil
}

// outOfOrder: a store's sale came before one already replayed.
type outOfOrder struct {
	line, prevLine int
	store          string
}

func (e *outOfOrder) Error() string {
	return fmt.Sprintf("line %d: a sale of store %s earlier than the one on line %d", e.line, e.store, e.prevLine)
}

// stream reads, parses and replays at once: a reader cuts the input into
// chunks of lines, GOMAXPROCS workers parse them, and the chunks are put
// back in input order and their sales handed to the replay shards (by
// store, see replayer) while later chunks are still being read. What is in
// flight is bounded: a few chunks per parse worker, a few batches per
// shard. A sale earlier than the last one replayed for its store stops the
// stream with *outOfOrder (nothing of the replay is reported then).
func stream(ctx context.Context, r io.Reader, opts Options) (*Report, Input, error) {
	in := Input{Skipped: map[string]int{}, BadLines: []BadLine{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	chunks := make(chan chunk, workers)
	results := make(chan parsed, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				select {
				case results <- parseChunk(c):
				case <-ctx.Done():
				}
			}
		}()
	}
	var progress func(int)
	if opts.Progress != nil {
		progress = func(n int) { opts.Progress("read", n, 0) }
	}
	readErr := make(chan error, 1)
	go func() {
		err := split(ctx, r, chunks, progress, &in.Lines)
		close(chunks)
		wg.Wait()
		close(results)
		readErr <- err
	}()

	rp := newReplayer(opts)
	type mark struct {
		at   time.Time
		line int
	}
	last := map[string]mark{} // the last sale handed on, per store
	waiting := map[int]parsed{}
	next := 0
	var err error
	take := func(p parsed) {
		for t, c := range p.skipped {
			in.Skipped[t] += c
		}
		for _, b := range p.bad {
			in.Bad++
			if len(in.BadLines) < MaxBadLines {
				in.BadLines = append(in.BadLines, b)
			}
		}
		for i := range p.sales {
			s := &p.sales[i]
			if prev, ok := last[s.Request.Store]; ok && s.Request.At.Before(prev.at) {
				if err == nil {
					err = &outOfOrder{line: s.Line, prevLine: prev.line, store: s.Request.Store}
					cancel()
				}
				return
			}
			last[s.Request.Store] = mark{s.Request.At, s.Line}
			in.Decisions++
			rp.add(s)
		}
	}
	for p := range results {
		if err != nil {
			continue // drain
		}
		waiting[p.idx] = p
		for {
			q, ok := waiting[next]
			if !ok {
				break
			}
			delete(waiting, next)
			next++
			take(q)
		}
	}
	rerr := <-readErr
	if err == nil {
		err = rerr
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("read events: %w", ctx.Err())
	}
	if err != nil {
		rp.abort()
		return nil, in, err
	}
	return rp.finish(), in, nil
}

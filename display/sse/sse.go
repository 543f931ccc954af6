// Package sse fans messages out to browsers over Server-Sent Events and
// reads such a stream back (for tests and tools).
//
// A slow browser never holds up the others: each subscriber has a bounded
// queue, and one that fills it is cut off. The page's EventSource reconnects
// by itself and gets a fresh snapshot, which is better than showing an
// alert late.
package sse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/posguard/posguard/internal/httpserve"
)

// Message is one SSE event. Data must not contain newlines; JSON from
// encoding/json never does.
type Message struct {
	Event string
	Data  []byte
	// ID, when set, is the event's id: a browser's EventSource sends the
	// last one back as Last-Event-ID when it reconnects.
	ID string
}

// JSON makes a message from a value.
func JSON(event string, v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("encode sse %s: %w", event, err)
	}
	return Message{Event: event, Data: b}, nil
}

// Hub is a set of subscribers. The zero value is not usable; use NewHub.
type Hub struct {
	mu      sync.Mutex
	clients map[chan Message]struct{}
	queue   int
}

// NewHub makes a hub whose subscribers each buffer up to queue messages.
func NewHub(queue int) *Hub {
	if queue < 1 {
		queue = 1
	}
	return &Hub{clients: map[chan Message]struct{}{}, queue: queue}
}

// Subscribe adds a subscriber. The channel is closed when the subscriber
// falls behind or cancel is called; cancel is idempotent.
func (h *Hub) Subscribe() (<-chan Message, func()) {
	ch := make(chan Message, h.queue)
	h.mu.Lock()
	h.clients[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() { h.drop(ch) }
}

func (h *Hub) drop(ch chan Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[ch]; ok {
		delete(h.clients, ch)
		close(ch)
	}
}

// Publish sends m to every subscriber without blocking and reports how many
// were cut off for being full.
func (h *Hub) Publish(m Message) (dropped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.clients {
		select {
		case ch <- m:
		default:
			delete(h.clients, ch)
			close(ch)
			dropped++
		}
	}
	return dropped
}

// Len is the number of subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// writeWait bounds one write of a stream to a page.
const writeWait = 10 * time.Second

// Stream writes first, then everything from ch, to w as an SSE response
// until ch closes, the request ends or done closes. A comment line every
// heartbeat keeps proxies from closing an idle stream and lets the browser
// notice a dead server. The stream outlives the server's read and write
// timeouts: each write gets writeWait, so a page that stops reading is cut
// off while one that reads stays connected.
func Stream(w http.ResponseWriter, r *http.Request, first []Message, ch <-chan Message, heartbeat time.Duration, done <-chan struct{}) error {
	rc := http.NewResponseController(w)
	httpserve.Extend(w, writeWait)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Reconnect quickly: a store display should not sit stale for the
	// browser's default of several seconds.
	if _, err := io.WriteString(w, "retry: 1500\n\n"); err != nil {
		return fmt.Errorf("write sse: %w", err)
	}
	for _, m := range first {
		if err := Write(w, m); err != nil {
			return err
		}
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush sse: %w", err)
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-done:
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			httpserve.Extend(w, writeWait)
			if err := Write(w, m); err != nil {
				return err
			}
		case <-tick.C:
			httpserve.Extend(w, writeWait)
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return fmt.Errorf("write sse heartbeat: %w", err)
			}
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("flush sse: %w", err)
		}
	}
}

// Write encodes one message.
func Write(w io.Writer, m Message) error {
	if strings.ContainsAny(m.Event, "\r\n") || bytes.ContainsAny(m.Data, "\r\n") || strings.ContainsAny(m.ID, "\r\n\x00") {
		return fmt.Errorf("write sse %q: newline in event, data or id", m.Event)
	}
	var b bytes.Buffer
	if m.ID != "" {
		b.WriteString("id: ")
		b.WriteString(m.ID)
		b.WriteByte('\n')
	}
	if m.Event != "" {
		b.WriteString("event: ")
		b.WriteString(m.Event)
		b.WriteByte('\n')
	}
	b.WriteString("data: ")
	b.Write(m.Data)
	b.WriteString("\n\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write sse %s: %w", m.Event, err)
	}
	return nil
}

// MaxLine bounds one line of a stream read by Reader.
const MaxLine = 1 << 20

// Reader parses an SSE stream as the HTML spec describes: "event:" and
// "data:" fields, multi-line data joined with "\n", comments and unknown
// fields ignored, a blank line dispatching.
type Reader struct {
	s *bufio.Scanner
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), MaxLine)
	return &Reader{s: s}
}

// ErrNoEvent is returned by Next when the stream ends with no complete event.
var ErrNoEvent = errors.New("sse: stream ended")

// Next returns the next event with data. Events without a data field are
// skipped, as a browser does.
func (r *Reader) Next() (Message, error) {
	var (
		m       Message
		data    [][]byte
		hasData bool
	)
	for r.s.Scan() {
		line := r.s.Bytes()
		if len(line) == 0 {
			if hasData {
				m.Data = bytes.Join(data, []byte("\n"))
				return m, nil
			}
			m, data = Message{}, nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			m.Event = string(value)
		case "id":
			m.ID = string(value)
		case "data":
			data = append(data, bytes.Clone(value))
			hasData = true
		}
	}
	if err := r.s.Err(); err != nil {
		return Message{}, fmt.Errorf("read sse: %w", err)
	}
	return Message{}, ErrNoEvent
}

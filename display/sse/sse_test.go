package sse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	cases := []struct {
		name, in string
		want     []Message
	}{
		{"one event", "event: alert\ndata: {}\n\n", []Message{{Event: "alert", Data: []byte("{}")}}},
		{"no space after colon", "event:a\ndata:x\n\n", []Message{{Event: "a", Data: []byte("x")}}},
		{"multi-line data", "data: a\ndata: b\n\n", []Message{{Event: "", Data: []byte("a\nb")}}},
		{"comments and retry skipped", ": ping\nretry: 10\n\ndata: x\n\n", []Message{{Event: "", Data: []byte("x")}}},
		{"event without data dropped", "event: a\n\nevent: b\ndata: 1\n\n", []Message{{Event: "b", Data: []byte("1")}}},
		{"unterminated event dropped", "data: x\n", nil},
		{"crlf", "event: a\r\ndata: 1\r\n\r\n", []Message{{Event: "a", Data: []byte("1")}}},
		{"id", "id: s7\nevent: a\ndata: 1\n\n", []Message{{Event: "a", Data: []byte("1"), ID: "s7"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(c.in))
			var got []Message
			for {
				m, err := r.Next()
				if errors.Is(err, ErrNoEvent) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d events %q, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if got[i].Event != c.want[i].Event || string(got[i].Data) != string(c.want[i].Data) {
					t.Errorf("event %d = %q %q, want %q %q", i, got[i].Event, got[i].Data, c.want[i].Event, c.want[i].Data)
				}
			}
		})
	}
}

func TestWriteRefusesNewlines(t *testing.T) {
	for _, m := range []Message{{Event: "a\nb", Data: []byte("x")}, {Event: "a", Data: []byte("x\ny")}, {Event: "a", Data: []byte("x\r")}, {Event: "a", Data: []byte("x"), ID: "1\n2"}} {
		if err := Write(io.Discard, m); err == nil {
			t.Errorf("Write(%q) accepted a newline", m)
		}
	}
}

// An id written is read back: what a browser sends as Last-Event-ID.
func TestWriteID(t *testing.T) {
	var b strings.Builder
	if err := Write(&b, Message{Event: "alert", Data: []byte("{}"), ID: "t17.aWQ"}); err != nil {
		t.Fatal(err)
	}
	m, err := NewReader(strings.NewReader(b.String())).Next()
	if err != nil || m.ID != "t17.aWQ" || m.Event != "alert" {
		t.Fatalf("read back %+v, %v from %q", m, err, b.String())
	}
}

// A real HTTP round trip: first messages, live messages, heartbeat, and the
// stream ending when the hub cuts the subscriber off.
func TestStreamOverHTTP(t *testing.T) {
	hub := NewHub(2)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, cancel := hub.Subscribe()
		defer cancel()
		first, _ := JSON("snapshot", map[string]int{"n": 0})
		Stream(w, r, []Message{first}, ch, 20*time.Millisecond, done)
	}))
	defer srv.Close()
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	rd := NewReader(res.Body)
	if m, err := rd.Next(); err != nil || m.Event != "snapshot" || string(m.Data) != `{"n":0}` {
		t.Fatalf("first = %q %v", m, err)
	}
	for hub.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	m1, _ := JSON("alert", map[string]string{"id": "a1"})
	if dropped := hub.Publish(m1); dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	if m, err := rd.Next(); err != nil || m.Event != "alert" || string(m.Data) != `{"id":"a1"}` {
		t.Fatalf("live = %q %v", m, err)
	}
}

// A subscriber that does not read is cut off, not waited for.
func TestHubCutsOffSlowSubscriber(t *testing.T) {
	hub := NewHub(2)
	slow, _ := hub.Subscribe()
	fast, cancelFast := hub.Subscribe()
	defer cancelFast()
	m := Message{Event: "x", Data: []byte("1")}
	dropped := 0
	for i := 0; i < 3; i++ {
		dropped += hub.Publish(m)
		<-fast
	}
	if dropped != 1 || hub.Len() != 1 {
		t.Fatalf("dropped %d, %d left; want the slow one cut off", dropped, hub.Len())
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d queued messages before close, want 2", n)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("event: a\ndata: 1\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in))
		for i := 0; i < 1000; i++ {
			m, err := r.Next()
			if err != nil {
				return
			}
			// Whatever was read must be writable and read back the same
			// when it has no newline (multi-line data joins with one).
			if strings.ContainsAny(m.Event, "\r\n") || strings.ContainsAny(string(m.Data), "\r\n") {
				continue
			}
			var b strings.Builder
			if err := Write(&b, m); err != nil {
				t.Fatalf("Write(%q): %v", m, err)
			}
			back, err := NewReader(strings.NewReader(b.String())).Next()
			if err != nil || back.Event != m.Event || string(back.Data) != string(m.Data) {
				t.Fatalf("round trip %q -> %q -> %q %v", m, b.String(), back, err)
			}
		}
	})
}

// BenchmarkPublish fans one message out to 10 pages and receives it on
// each, so every iteration really delivers (no page is cut off).
func BenchmarkPublish(b *testing.B) {
	hub := NewHub(4)
	var chans []<-chan Message
	for i := 0; i < 10; i++ {
		ch, cancel := hub.Subscribe()
		defer cancel()
		chans = append(chans, ch)
	}
	m, _ := JSON("alert", map[string]string{"id": "S001/R1/ep/1"})
	for b.Loop() {
		if hub.Publish(m) != 0 {
			b.Fatal("a subscriber was cut off")
		}
		for _, ch := range chans {
			<-ch
		}
	}
}

package mqttconn

import (
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Queue hands messages from paho's handlers to a worker without ever
// blocking the handler. A handler that blocks holds paho's router, and a
// worker that publishes (acks, outbox events) while the router is held
// waits on paho in turn: a deadlock under load. Beyond its limit the queue
// drops the message and counts it; callers only use it where a dropped
// message is sent again (an unacked event is resent by its register; acks,
// status and retained messages come again).
type Queue struct {
	mu      sync.Mutex
	msgs    []paho.Message
	limit   int
	dropped uint64
	ready   chan struct{}
}

// NewQueue makes a queue holding at most limit messages.
func NewQueue(limit int) *Queue {
	return &Queue{limit: limit, ready: make(chan struct{}, 1)}
}

// Push adds m, or drops it when the queue is full; it never blocks.
func (q *Queue) Push(m paho.Message) bool {
	q.mu.Lock()
	ok := len(q.msgs) < q.limit
	if ok {
		q.msgs = append(q.msgs, m)
	} else {
		q.dropped++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return ok
}

// Ready is signalled after a Push; then Take what is queued.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take removes and returns up to max queued messages, oldest first.
func (q *Queue) Take(max int) []paho.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.msgs))
	out := make([]paho.Message, n)
	copy(out, q.msgs)
	q.msgs = append(q.msgs[:0], q.msgs[n:]...)
	if len(q.msgs) > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return out
}

// Dropped counts the messages pushed while the queue was full.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

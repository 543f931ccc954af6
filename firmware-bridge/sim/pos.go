package sim

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// POS is the far end of a POS-facing port: what the POS application would
// read. The agent's POS output opens Path(); everything it writes is
// collected here.
type POS struct {
	port    *port
	cleanup func()

	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

// NewPOS creates the pty; link is the stable path ("" for a private
// temporary one).
func NewPOS(link string) (*POS, error) {
	p := &POS{cleanup: func() {}, notify: make(chan struct{}, 1)}
	if link == "" {
		l, cleanup, err := tempLink("pos")
		if err != nil {
			return nil, err
		}
		link, p.cleanup = l, cleanup
	}
	port, err := newPort(link, p.receive)
	if err != nil {
		p.cleanup()
		return nil, err
	}
	p.port = port
	return p, nil
}

func (p *POS) receive(b []byte) {
	p.mu.Lock()
	p.buf.Write(b)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Path is the path the agent opens.
func (p *POS) Path() string { return p.port.link }

// WaitConnected waits until the agent opens the port.
func (p *POS) WaitConnected(ctx context.Context) error { return p.port.waitConnected(ctx) }

// Next returns the next n bytes the agent wrote, waiting for them.
func (p *POS) Next(ctx context.Context, n int) ([]byte, error) {
	for {
		p.mu.Lock()
		if p.buf.Len() >= n {
			b := bytes.Clone(p.buf.Next(n))
			p.mu.Unlock()
			return b, nil
		}
		have := p.buf.Len()
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pos: %d of %d bytes received: %w", have, n, ctx.Err())
		case <-p.notify:
		}
	}
}

// Take returns and clears whatever has arrived so far.
func (p *POS) Take() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := bytes.Clone(p.buf.Bytes())
	p.buf.Reset()
	return b
}

// Unplug and Replug make the POS port vanish and come back.
func (p *POS) Unplug() error { return p.port.unplug() }

// Replug brings the port back at the same path.
func (p *POS) Replug() error { return p.port.plug() }

// Close unplugs and removes what NewPOS created.
func (p *POS) Close() error {
	err := p.port.unplug()
	p.cleanup()
	return err
}

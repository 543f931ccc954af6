//go:build !unix

package sim

import (
	"context"
	"errors"
)

// ErrUnplugged is returned when writing to an unplugged port.
var ErrUnplugged = errors.New("sim: port is unplugged")

// errNoPTY: the simulator's ports are pseudo-terminals, which only Unix
// has. On Windows a virtual COM port pair (com0com) and a real scanner are
// the ways to test; the register itself needs no simulator.
var errNoPTY = errors.New("sim: virtual serial ports need a pseudo-terminal (Unix only)")

type port struct{ link string }

func newPort(string, func([]byte)) (*port, error)   { return nil, errNoPTY }
func tempLink(string) (string, func(), error)       { return "", nil, errNoPTY }
func (p *port) plug() error                         { return errNoPTY }
func (p *port) unplug() error                       { return errNoPTY }
func (p *port) slave() string                       { return "" }
func (p *port) connected() bool                     { return false }
func (p *port) drain(context.Context) error         { return errNoPTY }
func (p *port) waitConnected(context.Context) error { return errNoPTY }
func (p *port) write([]byte) error                  { return errNoPTY }

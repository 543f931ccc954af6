//go:build unix

package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrUnplugged is returned when writing to an unplugged port.
var ErrUnplugged = errors.New("sim: port is unplugged")

// port is the device side of one virtual serial port: a pty master whose
// slave is reached through a symlink the simulator owns. Unplugging closes
// the master (the host's reads fail as on a USB unplug) and removes the
// link; replugging makes a new pty and points the same link at it, so the
// host reopens the path it was configured with.
type port struct {
	link    string
	receive func([]byte) // called from the reader goroutine

	mu   sync.Mutex
	conn *conn
}

type conn struct {
	master *os.File
	fd     int
	slave  string
	stop   chan struct{}
	done   chan struct{}
	// wrote is when anything was last written to this pty (under port.mu).
	wrote time.Time
}

func newPort(link string, receive func([]byte)) (*port, error) {
	p := &port{link: link, receive: receive}
	return p, p.plug()
}

// plug creates the pty and points the link at its slave.
func (p *port) plug() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return nil
	}
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	// Raw mode now, before the host opens it: the line discipline would
	// otherwise echo and translate CR in bytes written before that.
	// go.bug.st/serial sets raw mode again on open; termios calls work on
	// a pty slave, modem-line ioctls (DTR/RTS) do not and are not used.
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return err
	}
	name := slave.Name()
	// The slave is closed so the master reports POLLHUP until the host
	// opens it: that is how connected() sees the host.
	slave.Close()
	tmp := p.link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		master.Close()
		return fmt.Errorf("link %s to %s: %w", p.link, name, err)
	}
	if err := os.Rename(tmp, p.link); err != nil {
		os.Remove(tmp)
		master.Close()
		return fmt.Errorf("link %s to %s: %w", p.link, name, err)
	}
	c := &conn{master: master, fd: int(master.Fd()), slave: name, stop: make(chan struct{}), done: make(chan struct{})}
	p.conn = c
	go p.read(c)
	return nil
}

// unplug removes the link and closes the master.
func (p *port) unplug() error {
	p.mu.Lock()
	c := p.conn
	p.conn = nil
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	close(c.stop)
	<-c.done
	if err := os.Remove(p.link); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.master.Close()
		return fmt.Errorf("remove %s: %w", p.link, err)
	}
	return c.master.Close()
}

func (p *port) slave() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return ""
	}
	return p.conn.slave
}

func (p *port) read(c *conn) {
	defer close(c.done)
	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		fds[0].Revents = 0
		n, err := unix.Poll(fds, 20)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n == 0 {
			continue
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			m, err := unix.Read(c.fd, buf)
			if m > 0 {
				p.receive(append([]byte(nil), buf[:m]...))
			}
			if err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
		}
		// No host has the slave open (POLLHUP, or EIO from read): wait
		// for one instead of spinning.
		select {
		case <-c.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// connected reports whether a host has the slave open.
func (p *port) connected() bool {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
	if _, err := unix.Poll(fds, 0); err != nil {
		return false
	}
	return fds[0].Revents&unix.POLLHUP == 0
}

// settle is how long bytes written to the master may take to show in the
// slave's input count: the kernel moves them there from a workqueue, so
// right after a write the count can still read 0.
const settle = 50 * time.Millisecond

// drain waits until the host has opened the port and read everything
// written to it. A port never written to needs no reader.
func (p *port) drain(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		var wrote time.Time
		if p.conn != nil {
			wrote = p.conn.wrote
		}
		p.mu.Unlock()
		// connected first: once the host has it open, our own probe
		// descriptor cannot be mistaken for it.
		if wrote.IsZero() || time.Since(wrote) > settle && p.connected() && p.unread() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the host to read %s: %w", p.link, ctx.Err())
		case <-t.C:
		}
	}
}

func (p *port) waitConnected(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !p.connected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the host to open %s: %w", p.link, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// unread is how many bytes written to the port the host has not read yet.
// The count lives on the slave side: a descriptor of our own is opened for
// the question and closed at once, so the master goes on seeing the host
// alone (connected). Errors count as unread: the caller keeps waiting.
func (p *port) unread() int {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		return 0 // unplugged: nothing more can be read
	}
	fd, err := unix.Open(c.slave, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 1
	}
	defer unix.Close(fd)
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	if err != nil {
		return 1
	}
	return n
}

func (p *port) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return ErrUnplugged
	}
	p.conn.wrote = time.Now()
	for len(b) > 0 {
		n, err := unix.Write(p.conn.fd, b)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write pty %s: %w", p.conn.slave, err)
		}
		b = b[n:]
	}
	return nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get pty termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set pty raw: %w", err)
	}
	return nil
}

// tempLink makes a private directory for a link when the caller gave no
// path; the returned cleanup removes it.
func tempLink(name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "posguard-sim-")
	if err != nil {
		return "", nil, fmt.Errorf("make sim directory: %w", err)
	}
	return filepath.Join(dir, name), func() { os.RemoveAll(dir) }, nil
}

package fastpath

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Conn's net.Conn side. Its errors are a socket's, wrapped in *net.OpError
// as package net wraps them: io.EOF after the peer's FIN, ECONNRESET after
// its RST, EPIPE writing after CloseWrite or the connection's end,
// os.ErrDeadlineExceeded past a deadline, net.ErrClosed after Close, and
// ECONNABORTED when the engine stopped under the connection.

var _ net.Conn = (*Conn)(nil)

// LocalAddr is the connection's source address and port.
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.Local) }

// RemoteAddr is the target.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.Remote) }

func (c *Conn) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// wait blocks until ch signals, the engine lets the connection go, or the
// deadline (unix ns, 0: none) passes; false on the deadline.
func (c *Conn) wait(ch chan struct{}, deadline int64) bool {
	if deadline == 0 {
		select {
		case <-ch:
		case <-c.closed:
		}
		return true
	}
	d := time.Until(time.Unix(0, deadline))
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-c.closed:
	case <-t.C:
		return false
	}
	return true
}

func (c *Conn) gone() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Read reads what the peer sent, as read(2) on the socket does.
func (c *Conn) Read(b []byte) (int, error) {
	s := &c.s
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case len(s.rcv) > 0:
			if len(b) == 0 {
				s.mu.Unlock()
				return 0, nil
			}
			before := len(s.rcv)
			n := copy(b, s.rcv)
			s.rcv = s.rcv[n:]
			if len(s.rcv) == 0 {
				s.rcv = s.rcv[:0:0] // let a large buffer go
			}
			// A window update once the window grows past half the most
			// we announce from below it (tcp_cleanup_rbuf sends one when
			// the window can double).
			update := streamRcvBuf-before < s.maxWnd/2 && streamRcvBuf-len(s.rcv) >= s.maxWnd/2
			s.mu.Unlock()
			if update {
				c.ask(request{update: c}, false)
			}
			return n, nil
		case s.rcvErr != nil:
			err := s.rcvErr
			s.mu.Unlock()
			return 0, c.opError("read", err)
		}
		s.mu.Unlock()
		if c.gone() {
			s.mu.Lock()
			pending := len(s.rcv) > 0 || s.rcvErr != nil
			s.mu.Unlock()
			if !pending {
				return 0, c.opError("read", syscall.ECONNABORTED)
			}
			continue
		}
		if !c.wait(s.readable, s.rdDeadline.Load()) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

// Write queues b for the peer, as write(2) on a blocking socket does: it
// returns once all of b is in the send buffer (or with the error that
// stopped it, and how much was queued).
func (c *Conn) Write(b []byte) (int, error) {
	s := &c.s
	n := 0
	for {
		s.mu.Lock()
		var err error
		switch {
		case s.closed:
			err = net.ErrClosed
		case s.sndErr != nil:
			err = s.sndErr
		case s.shut:
			err = syscall.EPIPE
		}
		if err != nil {
			s.mu.Unlock()
			return n, c.opError("write", err)
		}
		m := min(len(b)-n, streamSndBuf-len(s.snd))
		s.snd = append(s.snd, b[n:n+m]...)
		n += m
		s.mu.Unlock()
		if m > 0 && !s.poked.Swap(true) {
			if !c.ask(request{write: c}, true) {
				return n, c.opError("write", syscall.EPIPE)
			}
		}
		if n == len(b) {
			return n, nil
		}
		if c.gone() {
			return n, c.opError("write", syscall.EPIPE)
		}
		if !c.wait(s.writable, s.wrDeadline.Load()) {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
	}
}

// ask hands r to the connection's owner; with block it waits for room in
// the owner's queue, else a full queue drops it (a window update the
// peer's next probe also gets). It is false once the engine let the
// connection go.
func (c *Conn) ask(r request, block bool) bool {
	w := c.e.workers[c.e.ownerOf(c.idx)]
	defer w.wake()
	if !block {
		select {
		case w.reqs <- r:
		default:
		}
		return true
	}
	select {
	case w.reqs <- r:
		return true
	case <-c.closed:
		return false
	}
}

// wake ends the worker's idle poll, if it is in one, for a request just
// queued.
func (w *worker) wake() {
	if w.waker != nil && w.polling.Load() {
		w.waker.Wake()
	}
}

// CloseWrite sends our FIN once the peer has everything written before
// it, as shutdown(SHUT_WR) does; reading goes on.
func (c *Conn) CloseWrite() error {
	s := &c.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	s.shut = true
	s.mu.Unlock()
	if !c.ask(request{write: c}, true) {
		return c.opError("close", syscall.ENOTCONN)
	}
	return nil
}

// Close closes the connection as close(2) does: our FIN follows the data
// written (FIN-WAIT, then TIME-WAIT holds the port), unless data the
// application never read is waiting, which resets it (RST|ACK), as Linux
// does. It returns at once; the engine finishes the close.
func (c *Conn) Close() error {
	was, unread := c.markClosed()
	switch {
	case was:
		return c.opError("close", net.ErrClosed)
	case unread:
		return c.abort()
	}
	c.ask(request{close: c}, true)
	return nil
}

// Abort closes the connection at once with RST|ACK (close(2) with
// SO_LINGER set to zero) and returns when the engine has taken the
// connection down, its RST queued for the wire.
func (c *Conn) Abort() error {
	c.markClosed()
	return c.abort()
}

// markClosed ends the application's side: Read and Write return
// net.ErrClosed, and those blocked wake. was says Close or Abort came
// before; unread that received data was waiting (it is dropped).
func (c *Conn) markClosed() (was, unread bool) {
	s := &c.s
	s.mu.Lock()
	was, unread = s.closed, len(s.rcv) > 0
	s.closed, s.rcv = true, nil
	s.mu.Unlock()
	signal(s.readable)
	signal(s.writable)
	return was, unread
}

func (c *Conn) abort() error {
	w := c.e.workers[c.e.ownerOf(c.idx)]
	select {
	case w.reqs <- request{close: c, abort: true}:
		w.wake()
	case <-c.closed:
		return nil
	case <-time.After(time.Second):
		return errors.New("fastpath: close: engine not responding")
	}
	select {
	case <-c.closed:
		return nil
	case <-time.After(time.Second):
		return errors.New("fastpath: close: the engine did not confirm")
	}
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds blocked and future Reads (zero: no bound).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.s.rdDeadline.Store(unixNs(t))
	signal(c.s.readable) // a blocked Read looks again
	return nil
}

// SetWriteDeadline bounds blocked and future Writes (zero: no bound).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.s.wrDeadline.Store(unixNs(t))
	signal(c.s.writable)
	return nil
}

func unixNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

// streamReads says the application may still read c (it did not Close).
func (c *Conn) streamReads() bool {
	if c == nil {
		return false
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return !c.s.closed
}

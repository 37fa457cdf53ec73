package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainGrace is how long shutdown waits before it closes a connection on which no
// request has begun. It covers bytes a client sent just before the shutdown that
// are still on their way to the kernel; bytes already in the kernel are seen at
// once (see unread).
const drainGrace = 50 * time.Millisecond

// drainListener is a net.Listener that loses no connection when it stops.
//
// Two things are lost by a plain http.Server.Shutdown, and drainListener keeps
// both. Closing a listening socket on Linux resets every connection still in its
// accept queue, request sent or not; Close takes them out of the queue first and
// Accept hands them to the server. And Shutdown drops a connection whose request
// headers are still arriving; drain waits for it, because it knows, for every
// connection, whether a request has begun on it.
type drainListener struct {
	net.Listener

	closeOnce sync.Once
	closeErr  error

	// headerTimeout is the server's ReadHeaderTimeout, which drain applies to
	// kept-alive connections that net/http has not yet put under it.
	headerTimeout time.Duration

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	// queued holds the connections Close took from the kernel's accept queue,
	// until Accept hands them to the server.
	queued []net.Conn
}

// trackedConn is a connection accepted by a drainListener.
type trackedConn struct {
	net.Conn
	// state is the http.ConnState the server last reported.
	state atomic.Int32
	// started says that a byte of the current request has been read: either the
	// first request on a new connection, or the next one on an idle connection.
	started atomic.Bool
	// shut says that drain has shut the connection's read side.
	shut bool
}

// Read notes that a request has begun before it returns the bytes.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.started.Load() {
		c.started.Store(true)
	}
	return n, err
}

// newDrainListener wraps ln for a server whose ReadHeaderTimeout is headerTimeout.
func newDrainListener(ln net.Listener, headerTimeout time.Duration) *drainListener {
	return &drainListener{Listener: ln, headerTimeout: headerTimeout, conns: make(map[*trackedConn]struct{})}
}

// Accept registers each connection before the server sees it, so that no
// connection the server has accepted can be missed by drain. Once the listener is
// closed it hands out the connections Close took from the kernel's queue, one a
// call, before it reports the listener closed.
func (l *drainListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		l.mu.Lock()
		if len(l.queued) > 0 {
			conn, err = l.queued[0], nil
			l.queued = l.queued[1:]
		}
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	c := &trackedConn{Conn: conn}
	c.state.Store(int32(http.StateNew))
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

// Close stops accepting. It first takes every connection the kernel has already
// queued, without waiting for new ones, so that closing the socket resets none of
// them; a connection that arrives after the socket is closed is refused, which a
// client or load balancer can safely retry. Close may be called more than once
// (http.Server.Shutdown closes the listener again) and reports only the first
// result.
func (l *drainListener) Close() error {
	l.closeOnce.Do(func() {
		queued, err := acceptQueued(l.Listener)
		l.mu.Lock()
		l.queued = queued
		l.mu.Unlock()
		// The queue is in place before the socket closes, so the server's
		// Accept, woken by the close, finds it.
		l.closeErr = errors.Join(err, l.Listener.Close())
	})
	return l.closeErr
}

// track is the http.Server's ConnState hook.
func (l *drainListener) track(conn net.Conn, state http.ConnState) {
	c, ok := conn.(*trackedConn)
	if !ok {
		return
	}
	c.state.Store(int32(state))
	switch state {
	case http.StateIdle:
		// The next request has not begun until its first byte is read.
		c.started.Store(false)
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}
}

// open returns the number of connections not yet closed, counting those taken
// from the kernel's queue that the server has not picked up yet.
func (l *drainListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns) + len(l.queued)
}

// drain waits until every connection has closed. After drainGrace it ends the
// connections on which no request has begun: neither read by the server nor
// waiting unread in the kernel. It returns how many connections were still open
// when ctx ended, or 0 once all have closed. The listener must already be closed,
// or new connections could keep it waiting.
//
// A connection is ended by shutting its read side, not by closing it: the
// server's read then returns EOF and the server closes the connection itself. If
// a request's bytes were read in the instant between the check and the shutdown,
// the server still has them and can still write its answer.
//
// A kept-alive connection on which fewer than four bytes of the next request
// have come is waited for too, but net/http starts its ReadHeaderTimeout only
// once it has four: until then only IdleTimeout bounds it. drain gives such
// connections headerTimeout from its start instead, so that a client that
// dribbles the start of its next request cannot outlast the shutdown.
func (l *drainListener) drain(ctx context.Context) int {
	start := time.Now()
	l.mu.Lock()
	for c := range l.conns {
		if http.ConnState(c.state.Load()) == http.StateIdle {
			c.SetReadDeadline(start.Add(l.headerTimeout))
		}
	}
	l.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		endUnstarted := time.Since(start) >= drainGrace
		l.mu.Lock()
		for c := range l.conns {
			if endUnstarted && !c.shut && c.idle() {
				c.shut = true
				shutRead(c.Conn)
			}
		}
		left := len(l.conns)
		l.mu.Unlock()
		if left == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return left
		case <-tick.C:
		}
	}
}

// idle reports whether no request has begun on c: the server is between
// requests (or before the first) and has read none of the next, and the kernel
// holds no byte of it either.
func (c *trackedConn) idle() bool {
	state := http.ConnState(c.state.Load())
	if state != http.StateNew && state != http.StateIdle {
		return false
	}
	// started is read again after the peek: the server may have read the bytes
	// between the first look and the peek, which would then see none.
	return !c.started.Load() && !unread(c.Conn) && !c.started.Load()
}

// shutRead makes the server's next read of conn return EOF, or closes conn if it
// cannot shut one side only.
func shutRead(conn net.Conn) {
	if cr, ok := conn.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return
	}
	conn.Close()
}

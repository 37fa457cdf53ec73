package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainGrace is how long shutdown waits before it closes a connection on which no
// request has begun. It covers the moment between a client's first bytes reaching
// the kernel and the server's first read of them.
const drainGrace = 50 * time.Millisecond

// drainListener is a net.Listener that knows, for every connection it accepted,
// whether a request has begun on it. http.Server.Shutdown drops a connection whose
// request headers are still arriving; drain waits for it instead.
type drainListener struct {
	net.Listener

	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// trackedConn is a connection accepted by a drainListener.
type trackedConn struct {
	net.Conn
	// state is the http.ConnState the server last reported.
	state atomic.Int32
	// started says that a byte of the current request has been read: either the
	// first request on a new connection, or the next one on an idle connection.
	started atomic.Bool
}

// Read notes that a request has begun before it returns the bytes.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.started.Load() {
		c.started.Store(true)
	}
	return n, err
}

// newDrainListener wraps ln.
func newDrainListener(ln net.Listener) *drainListener {
	return &drainListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
}

// Accept registers each connection before the server sees it, so that no
// connection the server has accepted can be missed by drain.
func (l *drainListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &trackedConn{Conn: conn}
	c.state.Store(int32(http.StateNew))
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

// Close stops accepting. It may be called more than once (http.Server.Shutdown
// closes the listener again) and reports only the first result.
func (l *drainListener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
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

// open returns the number of connections not yet closed.
func (l *drainListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// drain waits until every connection has closed, closing the ones on which no
// request has begun (after drainGrace). It returns how many connections were still
// open when ctx ended, or 0 once all have closed. The listener must already be
// closed, or new connections could keep it waiting.
func (l *drainListener) drain(ctx context.Context) int {
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		closeUnstarted := time.Since(start) >= drainGrace
		l.mu.Lock()
		for c := range l.conns {
			state := http.ConnState(c.state.Load())
			if closeUnstarted && (state == http.StateNew || state == http.StateIdle) && !c.started.Load() {
				c.Conn.Close()
				delete(l.conns, c)
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

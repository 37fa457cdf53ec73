package main

import (
	"net"
	"net/http"
	"time"
)

// connLimits are how long a connection may stay in each phase of its life
// before the listener closes it, so that a slow or silent client cannot hold a
// goroutine and a file descriptor for ever (slowloris). A zero limit is no
// limit.
//
// They do the work of http.Server's ReadHeaderTimeout, ReadTimeout,
// WriteTimeout and IdleTimeout, which the server leaves unset. Each of those
// makes net/http move a connection deadline on every request, and each move
// reads the clock and re-arms a runtime timer: together about a tenth of this
// service's CPU per request (docs/testing.md). The listener already follows
// every connection's phase for drain, so one goroutine checks them all a few
// times a second instead, and a request pays nothing more than the state
// reports net/http makes anyway.
type connLimits struct {
	// header runs from a new connection, or from the first byte of a request on
	// a kept-alive one, to the end of the request's headers.
	header time.Duration
	// request runs from the end of the headers to the end of the answer: the
	// body, the handler and the write. A client that sends its body slowly or
	// does not read the answer is cut off by it.
	request time.Duration
	// idle runs from the end of an answer to the first byte of the next request.
	idle time.Duration
	// every is how often the limits are checked. A connection is closed no
	// sooner than its limit and at most two checks after it.
	every time.Duration
}

// forPhase returns the limit for a connection in state, with or without a byte
// of its next request read.
func (l connLimits) forPhase(state http.ConnState, started bool) time.Duration {
	switch {
	case state == http.StateActive:
		return l.request
	case state == http.StateIdle && !started:
		return l.idle
	case state == http.StateNew || state == http.StateIdle:
		return l.header
	}
	return 0
}

// sweep checks the connections every l.limits.every until the listener is
// closed, and closes each one that has stayed in one phase longer than its
// limit.
//
// It needs no clock reading on the request path: it notes when it first sees a
// connection in a phase, which is no sooner than the phase began, and closes the
// connection once that phase has lasted the limit since. A phase is the
// connection's state with its count of changes (trackedConn.state) and whether
// the next request has begun, so a connection that went from idle to active and
// back between two checks is seen as idle anew, not as idle all along. While
// active, a byte the server reads ahead of the next request does not start a new
// phase, so a client cannot reset its request limit.
func (l *drainListener) sweep() {
	tick := time.NewTicker(l.limits.every)
	defer tick.Stop()
	var cut []net.Conn
	for {
		select {
		case <-l.stopSweep:
			return
		case <-tick.C:
		}
		now := time.Now()
		l.mu.Lock()
		for c := range l.conns {
			reports := c.state.Load()
			state := http.ConnState(reports & 0xff)
			started := c.started.Load() && state != http.StateActive
			phase := uint64(reports) << 1
			if started {
				phase |= 1
			}
			if phase != c.seen {
				c.seen, c.seenAt = phase, now
				continue
			}
			if limit := l.limits.forPhase(state, started); limit > 0 && now.Sub(c.seenAt) >= limit {
				cut = append(cut, c.Conn)
			}
		}
		l.mu.Unlock()
		// Closing the connection fails the server's read or write on it; the
		// server then closes it too and reports it closed, which removes it.
		for i, conn := range cut {
			conn.Close()
			cut[i] = nil
		}
		cut = cut[:0]
	}
}

package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testLimits are short, so that each cut-off is seen in a second. The phases
// differ, so that a connection cut by the wrong limit is seen too.
var testLimits = connLimits{
	header:  300 * time.Millisecond,
	request: 500 * time.Millisecond,
	idle:    900 * time.Millisecond,
	every:   20 * time.Millisecond,
}

// serveWithLimits serves the service as run does (newServer), on a listener
// with limits, and returns its address and listener.
func serveWithLimits(t *testing.T, limits connLimits) (string, *drainListener) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newDrainListener(tcp, limits)
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(newLogger(io.Discard, slog.LevelInfo), cfg, location{region: "europe-west1"}, new(atomic.Bool), ln)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return tcp.Addr().String(), ln
}

// dribble writes s a byte every 20ms until s ends or a write fails.
func dribble(conn net.Conn, s string) {
	for i := range len(s) {
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readAnswer reads one HTTP answer from br and fails the test unless it is one.
func readAnswer(t *testing.T, br *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// waitClosed waits until the server has closed conn (a read returns EOF or a
// reset), reading and dropping anything before that, and returns when.
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) time.Time {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, conn)
	at := time.Now()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server had not closed the connection after %s", within)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading until the server closes: %v", err)
	}
	return at
}

// TestSlowAndSilentClientsAreCutOff runs each slow or silent client against the
// service's server and checks that the right limit closes its connection: no
// sooner than the limit, and soon after it.
func TestSlowAndSilentClientsAreCutOff(t *testing.T) {
	t.Parallel()
	addr, _ := serveWithLimits(t, testLimits)
	const request = "GET / HTTP/1.1\r\nHost: hello.test\r\n\r\n"
	tests := []struct {
		name  string
		limit time.Duration
		// notBefore and notAfter are how soon and how late after the
		// client's start the close may come; notAfter 0 is the limit and two
		// checks.
		notBefore, notAfter time.Duration
		// client does its part of the exchange, and returns when the phase the
		// limit covers began.
		client func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time
	}{
		{"silent new connection", testLimits.header, testLimits.header - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			return time.Now()
		}},
		{"headers a byte at a time", testLimits.header, testLimits.header - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			start := time.Now()
			go dribble(conn, "GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: "+strings.Repeat("a", 200))
			return start
		}},
		{"second request's headers a byte at a time", testLimits.header, testLimits.header - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			io.WriteString(conn, request)
			readAnswer(t, br)
			start := time.Now()
			go dribble(conn, "GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: "+strings.Repeat("a", 200))
			return start
		}},
		{"idle after an answer", testLimits.idle, testLimits.idle - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			io.WriteString(conn, request)
			readAnswer(t, br)
			return time.Now()
		}},
		{"body a byte at a time", testLimits.request, testLimits.request - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			// The API reads no body: before it sends its 405, net/http reads
			// the body to keep the connection, until the limit.
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: hello.test\r\nContent-Length: 1000\r\n\r\n")
			start := time.Now()
			go dribble(conn, strings.Repeat("a", 1000))
			return start
		}},
		{"answers never read", testLimits.request, 0, testLimits.request + 2*time.Second, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			// Requests sent back to back and no answer read: once the
			// socket buffers are full, the server's write blocks.
			conn.(*net.TCPConn).SetReadBuffer(4096)
			written := make(chan struct{})
			go func() {
				many := strings.Repeat(request, 1000)
				for {
					conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					if _, err := io.WriteString(conn, many); err != nil {
						close(written)
						return
					}
				}
			}()
			// A write of ours times out once the server has stopped reading,
			// or while it is still reading but slower than we write (under
			// the race detector): where its request limit began is not known
			// here, only that the close must come, and well before the
			// limit would pass again and again.
			<-written
			return time.Now()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := tt.client(t, conn, bufio.NewReader(conn))
			closed := waitClosed(t, conn, tt.limit+5*time.Second)
			took := closed.Sub(start)
			// The client's clock starts no later than the server's, except
			// for "answers never read", where the server's write blocked
			// some time before the client saw its own write stop.
			if took < tt.notBefore {
				t.Errorf("closed %s after the phase began, sooner than its limit of %s", took, tt.limit)
			}
			most := tt.notAfter
			if most == 0 {
				most = tt.limit + 2*testLimits.every + 500*time.Millisecond
			}
			if took > most {
				t.Errorf("closed %s after the phase began, later than %s (the limit is %s)", took, most, tt.limit)
			}
		})
	}
}

// TestConnectionsInUseAreNotCutOff sends a request every 100ms on one
// connection, for several times every limit. The connection is idle nearly
// all the time, but each request begins a new idle phase: the sweep must see
// that it went active and came back between two checks, and not take it for
// idle all along.
func TestConnectionsInUseAreNotCutOff(t *testing.T) {
	t.Parallel()
	addr, ln := serveWithLimits(t, testLimits)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for end := time.Now().Add(3 * testLimits.idle); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /health/ HTTP/1.1\r\nHost: hello.test\r\n\r\n"); err != nil {
			t.Fatalf("writing a request: %v", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading an answer: %v (the connection was cut off while in use)", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /health/ status = %d, want 200", resp.StatusCode)
		}
	}
	if n := ln.open(); n != 1 {
		t.Errorf("open connections = %d, want 1", n)
	}
}

// TestAByteReadAheadKeepsTheRequestLimit checks the sweep alone: while a
// request is active, the server may read the first byte of the next one
// (net/http reads ahead to notice a client that went away). That byte must not
// start a new phase, or a client could restart its request limit with it.
func TestAByteReadAheadKeepsTheRequestLimit(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newDrainListener(tcp, testLimits)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ln.track(server, http.StateActive)
	start := time.Now()
	time.Sleep(testLimits.request * 9 / 10)
	io.WriteString(client, "G")
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatalf("server read: %v", err)
	}
	took := waitClosed(t, client, 5*time.Second).Sub(start)
	if most := testLimits.request + 2*testLimits.every + 300*time.Millisecond; took < testLimits.request || took > most {
		t.Errorf("closed %s after the request began, want between %s and %s", took, testLimits.request, most)
	}
}

// TestNoLimitsCutNothing checks that a zero connLimits starts no sweep and
// cuts nothing: a silent connection outlives what every test limit would allow.
func TestNoLimitsCutNothing(t *testing.T) {
	t.Parallel()
	addr, ln := serveWithLimits(t, connLimits{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(testLimits.idle + 200*time.Millisecond))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("silent connection read = %v, want our own timeout: the server must not close it", err)
	}
	if n := ln.open(); n != 1 {
		t.Errorf("open connections = %d, want 1", n)
	}
}

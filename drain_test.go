package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShutdownFinishesHalfSentRequest(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	half := len(rawRequest) / 2
	if _, err := io.WriteString(conn, rawRequest[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the client is slow: the server has read the first half

	s.cancel() // SIGTERM
	drainLine := s.waitLog(msgStoppedAccepting)
	if drainLine["open_connections"] != 1.0 {
		t.Errorf("open connections when accepting stopped = %v, want 1", drainLine["open_connections"])
	}
	// New connections are refused from now on...
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted after shutdown stopped accepting")
	}
	// ...but the request that had begun is still answered in full.
	time.Sleep(300 * time.Millisecond)
	if _, err := io.WriteString(conn, rawRequest[half:]); err != nil {
		t.Fatalf("finishing the request after SIGTERM: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to the half-sent request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"message":"Hello world!","region":"europe-west1"}`+"\n" {
		t.Errorf("half-sent request = %d %q, want the full 200 answer", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("response during shutdown does not close the connection, want Connection: close")
	}
	if err := s.wait(); err != nil {
		t.Errorf("run = %v, want nil after every request finished", err)
	}
}

func TestShutdownFinishesHalfSentSecondRequestOnKeepAlive(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	r := bufio.NewReader(conn)
	io.WriteString(conn, rawRequest)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.Close {
		t.Fatalf("first response closes the connection; want keep-alive before shutdown")
	}

	// The connection is idle; the second request starts, then SIGTERM arrives.
	half := len(rawRequest) / 2
	io.WriteString(conn, rawRequest[:half])
	time.Sleep(100 * time.Millisecond)
	s.cancel()
	s.waitLog(msgStoppedAccepting)
	time.Sleep(300 * time.Millisecond)
	if _, err := io.WriteString(conn, rawRequest[half:]); err != nil {
		t.Fatalf("finishing the second request: %v", err)
	}
	resp, err = http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the second response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("second request status = %d, want 200", resp.StatusCode)
	}
	if err := s.wait(); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

func TestShutdownClosesSilentConnections(t *testing.T) {
	t.Parallel()
	// A connection that never sends a byte must not hold shutdown until
	// the header limit: with a timeout shorter than that, waiting for it would fail.
	s := startRun(t, map[string]string{"SHUTDOWN_TIMEOUT": "2s"})
	if readHeaderTimeout <= 2*time.Second {
		t.Fatalf("readHeaderTimeout = %v; this test needs it longer than SHUTDOWN_TIMEOUT", readHeaderTimeout)
	}
	conn := s.dial()
	time.Sleep(50 * time.Millisecond)
	if err := s.stop(); err != nil {
		t.Errorf("run = %v, want nil: a silent connection is closed, not waited for", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("silent connection read = %d, %v; want EOF (closed by the server)", n, err)
	}
}

// TestShutdownAnswersRequestsQueuedInTheKernel reproduces the requests that wait in
// the kernel's accept queue when SIGTERM arrives: the service is frozen with
// SIGSTOP, 20 clients connect (the kernel completes their handshakes and queues
// them) and send a whole request, then SIGTERM and SIGCONT. Closing the listening
// socket would reset every one still queued; each must be answered instead, and
// the connection then closed by the server, so that the client goes elsewhere.
func TestShutdownAnswersRequestsQueuedInTheKernel(t *testing.T) {
	t.Parallel()
	const rounds, clients = 5, 20
	for round := range rounds {
		cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west1")
		line := waitForLog(t, stdout, "listening", done)
		addr := fmt.Sprintf("127.0.0.1:%d", int(line["port"].(float64)))

		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		conns := make([]net.Conn, clients)
		for i := range conns {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				cmd.Process.Signal(syscall.SIGCONT)
				t.Fatalf("round %d: connecting client %d to the frozen service: %v", round, i, err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: hello.test\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}

		answered := 0
		for i, c := range conns {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Errorf("round %d: client %d: %v, want 200", round, i, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"region":"europe-west1"`) {
				t.Errorf("round %d: client %d = %d %q, want 200 from europe-west1", round, i, resp.StatusCode, body)
				continue
			}
			// The server closes the connection after the answer: with Connection:
			// close if shutdown had begun when it answered, or else by ending the
			// idle connection while it drains.
			if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Errorf("round %d: client %d: after the answer read %d bytes, %v; want EOF", round, i, n, err)
				continue
			}
			answered++
		}
		if err := waitExit(t, done); err != nil {
			t.Errorf("round %d: exit %v after SIGTERM, want status 0; output:\n%s", round, err, stdout)
		}
		if answered != clients {
			t.Fatalf("round %d: %d of %d queued requests answered", round, answered, clients)
		}
	}
}

// TestCloseHandsOutQueuedConnections checks drainListener alone: connections
// the kernel queued but nobody accepted are handed out by Accept after Close,
// alive, and then Accept reports the listener closed.
func TestCloseHandsOutQueuedConnections(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newDrainListener(tcp, readHeaderTimeout)
	const queued = 5
	clients := make([]net.Conn, queued)
	for i := range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if n := ln.open(); n != queued {
		t.Errorf("open() after Close = %d, want the %d queued connections", n, queued)
	}
	for i := range queued {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept %d after Close = %v, want a queued connection", i, err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "hi"); err != nil {
			t.Errorf("writing to queued connection %d: %v", i, err)
		}
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
			t.Errorf("client %d read %q, %v; want \"hi\" from the server", i, got, err)
		}
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept once the queue is empty = %v, want net.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connecting after Close = %v, want connection refused", err)
	}
}

// TestDrainEndsOnlyConnectionsWithoutARequest checks the decision drain makes for
// each connection the server reports as new: one whose client sent nothing is
// ended, one whose request waits unread in the kernel is kept.
func TestDrainEndsOnlyConnectionsWithoutARequest(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newDrainListener(tcp, readHeaderTimeout)
	defer ln.Close()
	accept := func(send string) (server, client net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		io.WriteString(client, send)
		server, err = ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Close() })
		ln.track(server, http.StateNew)
		return server, client
	}
	silent, _ := accept("")
	waiting, _ := accept(rawRequest)
	// The request's bytes have reached the kernel once a peek sees them.
	deadline := time.Now().Add(5 * time.Second)
	for !unread(waiting.(*trackedConn).Conn) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the server's kernel")
		}
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if left := ln.drain(ctx); left != 2 {
		t.Errorf("drain = %d open, want 2: both stay open until the server closes them", left)
	}
	// The silent connection's read side was shut: the server reads EOF at once.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("silent connection: server read %d, %v; want EOF (ended by drain)", n, err)
	}
	// The waiting one still has its request to read.
	waiting.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(rawRequest))
	if _, err := io.ReadFull(waiting, got); err != nil || string(got) != rawRequest {
		t.Errorf("waiting connection: server read %q, %v; want the whole request", got, err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests are what clients do to the service, written as the clients
// would: raw TCP where a client breaks the protocol's usual rhythm, curl and
// Go's own client where they are what users bring. Most run against run
// itself, with the limits it serves with; the cut-off of each limit is checked
// with shorter ones (testTimeouts).

// testTimeouts are short, so that each cut-off is seen in a second or two.
// They differ from each other by more than the slack the tests allow, so that
// a connection cut by the wrong limit is seen too: net/http falls back on
// ReadTimeout for a ReadHeaderTimeout or an IdleTimeout left at zero.
var testTimeouts = timeouts{
	readHeader: 300 * time.Millisecond,
	read:       1200 * time.Millisecond,
	write:      500 * time.Millisecond,
	idle:       2000 * time.Millisecond,
}

// serveWithTimeouts serves the service as run does (newDrainListener,
// newServer), with limits t, and returns its address.
func serveWithTimeouts(t *testing.T, limits timeouts) string {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newDrainListener(tcp, limits.readHeader)
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	logger := newLogger(io.Discard, slog.LevelInfo)
	srv := newServer(newHandler(logger, cfg, location{region: "europe-west1"}, new(atomic.Bool)), ln, limits, logger)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return tcp.Addr().String()
}

// dribble writes s a byte every pause until s ends or a write fails.
func dribble(conn net.Conn, s string, pause time.Duration) {
	for i := range len(s) {
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(pause)
	}
}

// readAnswer reads one HTTP answer from br and fails the test unless it is one.
func readAnswer(t *testing.T, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
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

// TestSlowAndSilentClientsAreCutOff runs each slow or silent client against
// the service's server and checks that the right one of http.Server's
// timeouts closes its connection: no sooner than the limit, and soon after it.
func TestSlowAndSilentClientsAreCutOff(t *testing.T) {
	t.Parallel()
	addr := serveWithTimeouts(t, testTimeouts)
	const request = "GET / HTTP/1.1\r\nHost: hello.test\r\n\r\n"
	slowHeader := "GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: " + strings.Repeat("a", 200)
	tests := []struct {
		name  string
		limit time.Duration
		// notBefore and notAfter are how soon and how late after the phase
		// began the close may come; notAfter 0 is the limit and 700 ms. The
		// client's clock starts a little after the server's (the server
		// may accept before Dial returns), so notBefore is 50 ms short of
		// the limit.
		notBefore, notAfter time.Duration
		// client does its part of the exchange, and returns when the phase the
		// limit covers began.
		client func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time
	}{
		{"silent new connection", testTimeouts.readHeader, testTimeouts.readHeader - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			return time.Now()
		}},
		{"headers a byte at a time", testTimeouts.readHeader, testTimeouts.readHeader - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			start := time.Now()
			go dribble(conn, slowHeader, 20*time.Millisecond)
			return start
		}},
		{"second request's headers a byte at a time", testTimeouts.readHeader, testTimeouts.readHeader - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			io.WriteString(conn, request)
			readAnswer(t, br)
			start := time.Now()
			go dribble(conn, slowHeader, 20*time.Millisecond)
			return start
		}},
		{"pipelined: two requests and half a third in one write", testTimeouts.readHeader, testTimeouts.readHeader - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			start := time.Now()
			io.WriteString(conn, request+request+request[:len(request)/2])
			readAnswer(t, br)
			readAnswer(t, br)
			return start
		}},
		{"idle after an answer", testTimeouts.idle, testTimeouts.idle - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			io.WriteString(conn, request)
			readAnswer(t, br)
			return time.Now()
		}},
		{"body a byte at a time", testTimeouts.read, testTimeouts.read - 50*time.Millisecond, 0, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
			// The API reads no body: before it sends its 405, net/http reads
			// a small body to keep the connection, until ReadTimeout.
			start := time.Now()
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: hello.test\r\nContent-Length: 1000\r\n\r\n")
			go dribble(conn, strings.Repeat("a", 1000), 20*time.Millisecond)
			return start
		}},
		{"answers never read", testTimeouts.write, 0, testTimeouts.write + 2*time.Second, func(t *testing.T, conn net.Conn, br *bufio.Reader) time.Time {
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
			// the race detector): where its write deadline began is not known
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
				most = tt.limit + 700*time.Millisecond
			}
			if took > most {
				t.Errorf("closed %s after the phase began, later than %s (the limit is %s)", took, most, tt.limit)
			}
		})
	}
}

// TestTheHeaderLimitRunsFromTheConnection is the slow-loris client that waits
// before it starts: silent for most of the header limit, then a byte at a
// time. Its first byte must not restart the limit, which runs from the
// moment the connection was accepted.
func TestTheHeaderLimitRunsFromTheConnection(t *testing.T) {
	t.Parallel()
	s := startRun(t, nil)
	conn := s.dial()
	start := time.Now()
	time.Sleep(readHeaderTimeout - time.Second)
	go dribble(conn, "GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: "+strings.Repeat("a", 100), 100*time.Millisecond)
	took := waitClosed(t, conn, 2*readHeaderTimeout).Sub(start)
	if took < readHeaderTimeout || took > readHeaderTimeout+2*time.Second {
		t.Errorf("closed %s after the connection opened, want %s (the header limit) to %s", took, readHeaderTimeout, readHeaderTimeout+2*time.Second)
	}
}

// TestPipelinedHalfRequestIsCutAtTheHeaderLimit: two whole requests and half a
// third in one write. The first two are answered; the third's headers are
// bounded by the header limit like any other's, though its first bytes came
// long before net/http began to read it.
func TestPipelinedHalfRequestIsCutAtTheHeaderLimit(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	br := bufio.NewReader(conn)
	start := time.Now()
	io.WriteString(conn, rawRequest+rawRequest+rawRequest[:len(rawRequest)/2])
	for i := range 2 {
		if resp := readAnswer(t, br); resp.StatusCode != 200 {
			t.Fatalf("pipelined request %d status = %d, want 200", i+1, resp.StatusCode)
		}
	}
	took := waitClosed(t, conn, 2*readHeaderTimeout).Sub(start)
	if took < readHeaderTimeout || took > readHeaderTimeout+2*time.Second {
		t.Errorf("closed %s after the write, want %s (the header limit) to %s", took, readHeaderTimeout, readHeaderTimeout+2*time.Second)
	}
}

// TestExpectContinueIsAnsweredWithoutTheBody: a client that sends Expect:
// 100-continue waits for the server's go-ahead before it sends its body. No
// route reads a body, so the service answers at once, never asks for the
// body, and closes the connection rather than read a body it did not want.
// Raw TCP is the client that never sends the body; curl (which sends Expect
// by itself for bodies over 1 MiB) and Go's client send it only if asked.
func TestExpectContinueIsAnsweredWithoutTheBody(t *testing.T) {
	t.Parallel()
	s := startRun(t, nil)
	const refused = `{"error":"method POST not allowed"}` + "\n"

	t.Run("raw TCP, body never sent", func(t *testing.T) {
		t.Parallel()
		conn := s.dial()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(conn, "POST / HTTP/1.1\r\nHost: hello.test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(conn)
		status, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer within 2 s: %v", err)
		}
		if !strings.HasPrefix(status, "HTTP/1.1 405 ") {
			t.Fatalf("first line = %q, want a 405 (and no 100 Continue: the service reads no body)", status)
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(status), br)), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != refused || resp.Header.Get("Allow") != "GET, HEAD" || !resp.Close {
			t.Errorf("answer = %q Allow %q closes %v, want %q, Allow: GET, HEAD, and the connection closed", body, resp.Header.Get("Allow"), resp.Close, refused)
		}
	})

	t.Run("curl", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed (.ci/run installs it)")
		}
		file := t.TempDir() + "/body"
		if err := os.WriteFile(file, bytes.Repeat([]byte("x"), 5000), 0o644); err != nil {
			t.Fatal(err)
		}
		// --expect100-timeout: curl waits this long for the go-ahead, so
		// that it sends the body only if the service asks for it.
		out, err := exec.Command("curl", "-sS", "-v", "--max-time", "5", "--expect100-timeout", "4",
			"-H", "Expect: 100-continue", "--data-binary", "@"+file, s.url+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		trace := string(out)
		if !strings.Contains(trace, "< HTTP/1.1 405 ") || !strings.Contains(trace, refused) {
			t.Errorf("curl did not get the 405:\n%s", trace)
		}
		// curl says "Done waiting for 100-continue" when it gives up waiting
		// for an answer and sends the body, and "} [5000 bytes data]" when
		// it sends the body.
		for _, sent := range []string{"100 Continue", "Done waiting for 100-continue", "[5000 bytes data]"} {
			if strings.Contains(trace, sent) {
				t.Errorf("curl printed %q: the service kept it waiting or asked for its body:\n%s", sent, trace)
			}
		}
	})

	t.Run("Go's client", func(t *testing.T) {
		t.Parallel()
		body := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), 5000))}
		req, err := http.NewRequest("POST", s.url+"/", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Expect", "100-continue")
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 4 * time.Second}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 405 || string(got) != refused {
			t.Errorf("POST / = %d %q, want 405 %q", resp.StatusCode, got, refused)
		}
		if n := body.n.Load(); n != 0 {
			t.Errorf("the client was asked for its body and sent %d bytes of it; want none", n)
		}
	})
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestDeclaredBodyNotSentDoesNotHoldTheAnswer: GET / declaring a body larger
// than net/http discards (256 KiB), and never sending it. The answer comes at
// once, and the connection is closed, since the rest of the body could not be
// told from a next request.
func TestDeclaredBodyNotSentDoesNotHoldTheAnswer(t *testing.T) {
	t.Parallel()
	s := startRun(t, map[string]string{"REGION": "europe-west1"})
	conn := s.dial()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: hello.test\r\nContent-Length: 500000\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within 2 s: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"message":"Hello world!","region":"europe-west1"}`+"\n" || !resp.Close {
		t.Errorf("GET / with an unsent body = %d %q closes %v, want the 200 answer and the connection closed", resp.StatusCode, body, resp.Close)
	}
}

// TestTheHandlerLeavesTheRequestItIsGivenAlone: net/http keeps using its own
// *http.Request after the handler returns (to finish Expect: 100-continue and
// to discard an unread body), so the handler must not change it (net/http's
// Handler documentation). Every kind of request the middleware treats
// differently goes through the whole handler, and the request is compared
// field by field with a copy taken before.
func TestTheHandlerLeavesTheRequestItIsGivenAlone(t *testing.T) {
	t.Parallel()
	onCloudRun := map[string]string{"K_SERVICE": "hello"}
	tests := []struct {
		name, method, path string
		env, header        map[string]string
		body               string
	}{
		{name: "GET /", method: "GET", path: "/"},
		{name: "POST / with a body", method: "POST", path: "/", body: "x"},
		{name: "Expect: 100-continue", method: "POST", path: "/", body: "xxxxxxxxxx", header: map[string]string{"Expect": "100-continue"}},
		{name: "unknown path", method: "GET", path: "/nope"},
		{name: "CORS preflight", method: "OPTIONS", path: "/", header: map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}},
		{name: "CORS request", method: "GET", path: "/", header: map[string]string{"Origin": "https://a.example"}},
		{name: "redirect", method: "GET", path: "/x", env: onCloudRun, header: map[string]string{"X-Forwarded-Proto": "http"}},
		{name: "HSTS", method: "GET", path: "/", env: onCloudRun, header: map[string]string{"X-Forwarded-Proto": "https"}},
		{name: "health", method: "GET", path: "/health"},
		{name: "access log", method: "GET", path: "/", env: map[string]string{"LOG_LEVEL": "debug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			h := newHandler(newLogger(io.Discard, cfg.logLevel), cfg, location{region: "europe-west1"}, new(atomic.Bool))
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			before := *req
			header := req.Header.Clone()
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !reflect.DeepEqual(*req, before) {
				t.Errorf("%s %s: the handler changed the request it was given:\nbefore %+v\nafter  %+v", tt.method, tt.path, before, *req)
			}
			if !reflect.DeepEqual(req.Header, header) {
				t.Errorf("%s %s: the handler changed the request's header: %v, was %v", tt.method, tt.path, req.Header, header)
			}
		})
	}
}

// TestSlowClientsAtSIGTERMLeaveACleanExit sends SIGTERM to the real command
// while a slow client holds a connection in each phase that a limit bounds.
// Each limit is shorter than SHUTDOWN_TIMEOUT, so the client is cut off by it,
// and the command exits 0 without an ERROR line.
func TestSlowClientsAtSIGTERMLeaveACleanExit(t *testing.T) {
	t.Parallel()
	for _, limit := range []time.Duration{readHeaderTimeout, readTimeout, writeTimeout} {
		if limit >= 8*time.Second {
			t.Fatalf("a limit of %s is not shorter than SHUTDOWN_TIMEOUT's default of 8s", limit)
		}
	}
	const request = "GET / HTTP/1.1\r\nHost: hello.test\r\n\r\n"
	tests := []struct {
		name string
		// client starts its part and returns; it goes on in the background.
		client func(t *testing.T, conn net.Conn)
	}{
		{"headers a byte at a time", func(t *testing.T, conn net.Conn) {
			go dribble(conn, "GET / HTTP/1.1\r\nHost: hello.test\r\nX-Slow: "+strings.Repeat("a", 1000), 100*time.Millisecond)
		}},
		{"next request's first bytes on a kept-alive connection", func(t *testing.T, conn net.Conn) {
			// Fewer than the four bytes net/http waits for before it starts
			// its header limit.
			io.WriteString(conn, request)
			readAnswer(t, bufio.NewReader(conn))
			io.WriteString(conn, "GE")
		}},
		{"body a byte at a time", func(t *testing.T, conn net.Conn) {
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: hello.test\r\nContent-Length: 1000\r\n\r\n")
			go dribble(conn, strings.Repeat("a", 1000), 100*time.Millisecond)
		}},
		{"answers never read", func(t *testing.T, conn net.Conn) {
			conn.(*net.TCPConn).SetReadBuffer(4096)
			go func() {
				many := strings.Repeat(request, 1000)
				for {
					if _, err := io.WriteString(conn, many); err != nil {
						return
					}
				}
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, stdout, _, done := startMain(t, "PORT=0", "REGION=europe-west1")
			line := waitForLog(t, stdout, "listening", done)
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(line["port"].(float64))))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tt.client(t, conn)
			time.Sleep(500 * time.Millisecond)
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := waitExit(t, done); err != nil {
				t.Errorf("after SIGTERM the command ended with %v, want exit status 0; logs:\n%s", err, stdout)
			}
			if strings.Contains(stdout.String(), `"severity":"ERROR"`) {
				t.Errorf("an ERROR was logged:\n%s", stdout)
			}
			if !strings.Contains(stdout.String(), fmt.Sprintf(`"message":%q`, "stopped")) {
				t.Errorf("no \"stopped\" line:\n%s", stdout)
			}
		})
	}
}

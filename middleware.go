package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/cors"
)

// hstsValue tells browsers to use https for this host for a year. It leaves out
// includeSubDomains, which would bind hosts this service knows nothing about.
const hstsValue = "max-age=31536000"

// setResponseHeaders sets the headers every answer carries. Cache-Control: no-store
// keeps a CDN or browser from hiding which region answered; the others are the
// hardening OWASP's REST Security Cheat Sheet lists for a JSON API, which no page
// should frame or sniff. Each header costs CPU on every response (net/http
// clones, sorts and writes them: about 2 % each, docs/testing.md), so there is
// none more. X-Frame-Options is left out: CSP's frame-ancestors obsoletes it in
// every browser that has CSP (docs/security.md).
func setResponseHeaders(next http.Handler) http.Handler {
	// Each value is a fresh one-element slice, assigned rather than Set, so that
	// setting them costs no allocation per request.
	headers := map[string]string{
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	}
	keys := make([]string, 0, len(headers))
	values := make([][]string, 0, len(headers))
	for k, v := range headers {
		keys = append(keys, k)
		values = append(values, []string{v})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for i, k := range keys {
			h[k] = values[i]
		}
		next.ServeHTTP(w, r)
	})
}

// redirectToHTTPS redirects requests that reached the load balancer over plain
// http (X-Forwarded-Proto: http) to the same URL on https: 301 for GET and HEAD,
// 308 for other methods so that they are repeated unchanged. The port is dropped,
// whatever it was: the port a client used for http says nothing about where https
// is served, and behind the load balancer that is 443. Requests that came over
// https get Strict-Transport-Security. Requests without the header came straight
// to the container and are served as they are, and /health is never redirected,
// so that a health checker cannot be sent round in a loop. CORS runs before this,
// so a preflight is answered rather than redirected: browsers never follow a
// redirect on one.
func redirectToHTTPS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || r.URL.Path == "/health/" {
			next.ServeHTTP(w, r)
			return
		}
		switch forwardedProto(r) {
		case "http":
			if r.Host == "" {
				break
			}
			status := http.StatusPermanentRedirect
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				status = http.StatusMovedPermanently
			}
			w.Header().Set("Location", "https://"+hostWithoutPort(r.Host)+r.URL.RequestURI())
			w.WriteHeader(status)
			return
		case "https":
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}

// corsForBrowsers applies CORS (github.com/go-chi/cors) to requests that carry an
// Origin header, which is every request a browser makes cross-origin. Others,
// such as load balancer probes and curl, skip it, and with it the Vary: Origin
// header it adds for caches: every answer is Cache-Control: no-store, so no
// cache can serve one client's answer to another.
func corsForBrowsers(options cors.Options) func(http.Handler) http.Handler {
	c := cors.New(options)
	return func(next http.Handler) http.Handler {
		withCORS := c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, browser := r.Header["Origin"]; browser {
				withCORS.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// hostWithoutPort returns host without its port, keeping an IPv6 address in
// brackets.
func hostWithoutPort(host string) string {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// forwardedProto returns the protocol the client used to reach our front end, in
// lower case. Of several entries in X-Forwarded-Proto (or several headers) it
// trusts the last: each proxy appends what it saw, so the last was written by the
// proxy nearest to the service, the load balancer or Cloud Run's front end, while
// the client can write any of the earlier ones.
func forwardedProto(r *http.Request) string {
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return ""
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.ToLower(strings.TrimSpace(last))
}

// closeWhileDraining asks clients to close their connection after each response
// once shutdown has begun, so that they open the next one elsewhere.
func closeWhileDraining(draining *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				w.Header().Set("Connection", "close")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recoverPanic turns a panic in a handler into a 500 in the usual JSON shape and
// an ERROR log line whose stack_trace Error Reporting can read. The connection and
// the server carry on. If the handler had already begun its answer, a 500 can no
// longer be sent: the connection is aborted instead (http.ErrAbortHandler), so that
// the client sees a broken answer rather than a truncated one that looks whole.
// http.ErrAbortHandler from a handler is passed on as it is: it is how a handler
// asks net/http to abort the response without a log line.
func recoverPanic(logger *slog.Logger, proj *project) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The recorder costs an allocation and about 85 ns a request
			// (BenchmarkRoot), the price of knowing whether the answer began.
			rec := &statusRecorder{ResponseWriter: w}
			defer func() {
				began := rec.status != 0
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				attrs := append(proj.traceAttrs(r.Header),
					slog.String("stack_trace", fmt.Sprintf("panic: %v\n\n%s", v, debug.Stack())),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Bool("answer_begun", began))
				logger.LogAttrs(r.Context(), slog.LevelError, fmt.Sprintf("panic serving %s %s: %v", r.Method, r.URL.Path, v), attrs...)
				if began {
					panic(http.ErrAbortHandler)
				}
				writeError(w, http.StatusInternalServerError, "internal server error")
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// logRequests logs every request at DEBUG, with an httpRequest field in the shape
// Cloud Logging shows as a request line, tied to the request's trace.
func logRequests(logger *slog.Logger, proj *project) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			remote, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				remote = r.RemoteAddr
			}
			attrs := append(proj.traceAttrs(r.Header), slog.Group("httpRequest",
				slog.String("requestMethod", r.Method),
				slog.String("requestUrl", r.URL.RequestURI()),
				slog.Int("status", status),
				slog.Int("responseSize", rec.bytes),
				slog.String("userAgent", r.UserAgent()),
				slog.String("remoteIp", remote),
				slog.String("protocol", r.Proto),
				slog.String("latency", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64)+"s"),
			))
			logger.LogAttrs(r.Context(), slog.LevelDebug, r.Method+" "+r.URL.Path, attrs...)
		})
	}
}

// statusRecorder remembers the status and body size a handler wrote: for the
// access log, and for recoverPanic, to know whether the answer has begun.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// FuzzServer sends random requests through the whole handler: method, path,
// query, Host, X-Forwarded-Proto, trace headers, Origin, with the HTTPS redirect
// on and off. Whatever comes in, the answer has a status from the expected set
// (a panic would show as 500), a well-formed JSON body in the one error shape,
// and a redirect only ever to https.
func FuzzServer(f *testing.F) {
	f.Add("GET", "/", "", "hello.example", "", "", "", "", false)
	f.Add("HEAD", "/health/", "x=1", "hello.example", "https", "", "", "", true)
	f.Add("POST", "/a/b", "q=%zz", "h:8080", "http", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", true)
	f.Add("OPTIONS", "/", "", "h", "", "", "105445aa7843bc8bf206b12000100000/1;o=1", "https://app.example", false)
	f.Add("DELETE", "//health//", "", "", "HTTP, https", "ff-x-y-z", "abc/zz", "null", true)
	f.Add("GET", "/%2e%2e/", "a=b&c", "[::1]:80", "http", "", "", "", true)

	servers := map[bool]http.Handler{}
	for _, redirect := range []bool{false, true} {
		cfg, err := loadConfig(mapEnv(map[string]string{"HTTPS_REDIRECT": map[bool]string{false: "false", true: "true"}[redirect]}))
		if err != nil {
			f.Fatal(err)
		}
		servers[redirect] = newHandler(newLogger(io.Discard, slog.LevelInfo), cfg, location{region: "europe-west1", project: knownProject("p")}, new(atomic.Bool))
	}
	statuses := map[int]bool{200: true, 301: true, 308: true, 404: true, 405: true}

	f.Fuzz(func(t *testing.T, method, path, query, host, proto, traceparent, cloudTrace, origin string, redirect bool) {
		// net/http refuses these before any handler sees them.
		if method == "" || !validToken(method) || !validHost(host) {
			return
		}
		headers := map[string]string{"X-Forwarded-Proto": proto, "Traceparent": traceparent, "X-Cloud-Trace-Context": cloudTrace, "Origin": origin}
		req := &http.Request{
			Method: method, URL: &url.URL{Path: "/" + strings.TrimPrefix(path, "/"), RawQuery: query},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: host,
			Body: http.NoBody, RemoteAddr: "192.0.2.1:1234",
		}
		req.RequestURI = req.URL.RequestURI()
		for k, v := range headers {
			if v == "" {
				continue
			}
			if !validFieldValue(v) {
				return
			}
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		servers[redirect].ServeHTTP(rec, req)

		if !statuses[rec.Code] {
			t.Fatalf("%s %q status = %d, want one of 200, 301, 308, 404, 405", method, req.RequestURI, rec.Code)
		}
		body := rec.Body.Bytes()
		switch {
		case rec.Code == 301 || rec.Code == 308:
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "https://") {
				t.Fatalf("redirect to %q, want https://", loc)
			}
		case len(body) == 0:
			if method != "HEAD" && method != "OPTIONS" {
				t.Fatalf("%s %q: %d with an empty body", method, req.RequestURI, rec.Code)
			}
		default:
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("%s %q: body %q is not a JSON object: %v", method, req.RequestURI, body, err)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json", ct)
			}
			if rec.Code >= 400 {
				if msg, ok := v["error"].(string); !ok || msg == "" || len(v) != 1 {
					t.Fatalf("error body %q is not {\"error\": \"...\"}", body)
				}
			}
		}
	})
}

// validToken reports whether s is an HTTP token (RFC 9110), as a method must be.
func validToken(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHost is a conservative form of what net/http accepts in Host: a name or
// address with an optional port. Anything else never reaches a handler.
func validHost(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-:[]_", c) >= 0) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be a header value: no control bytes
// other than tab. net/http refuses the others.
func validFieldValue(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var (
	traceValue = regexp.MustCompile(`^projects/p/traces/[0-9a-f]{32}$`)
	spanValue  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// FuzzTraceHeaders feeds random trace headers to the parsers: they never panic,
// and whatever they accept is in the form Cloud Logging wants.
func FuzzTraceHeaders(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	f.Add("", "105445aa7843bc8bf206b12000100000/18446744073709551615;o=1")
	f.Add("zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "105445AA7843BC8BF206B12000100000/0")
	f.Fuzz(func(t *testing.T, traceparent, cloudTrace string) {
		h := http.Header{}
		h.Set("Traceparent", traceparent)
		h.Set("X-Cloud-Trace-Context", cloudTrace)
		for _, a := range traceAttrs("p", h) {
			switch a.Key {
			case traceKey:
				if !traceValue.MatchString(a.Value.String()) {
					t.Fatalf("trace = %q from %q / %q", a.Value.String(), traceparent, cloudTrace)
				}
			case spanKey:
				if !spanValue.MatchString(a.Value.String()) {
					t.Fatalf("spanId = %q from %q / %q", a.Value.String(), traceparent, cloudTrace)
				}
			}
		}
	})
}

// FuzzLoadConfig feeds random values to the configuration: it never panics, and
// whatever it accepts is in range.
func FuzzLoadConfig(f *testing.F) {
	f.Add("8080", "8s", "0", "info", "*", "europe-west1", "true")
	f.Add("-1", "banana", "-3s", "LOUD", "example.com,,", "a b", "maybe")
	f.Fuzz(func(t *testing.T, port, timeout, delay, level, origins, region, redirect string) {
		cfg, err := loadConfig(mapEnv(map[string]string{
			"PORT": port, "SHUTDOWN_TIMEOUT": timeout, "SHUTDOWN_DELAY": delay, "LOG_LEVEL": level,
			"CORS_ORIGINS": origins, "REGION": region, "HTTPS_REDIRECT": redirect,
		}))
		if err != nil {
			return
		}
		if cfg.port < 0 || cfg.port > 65535 || cfg.shutdownTimeout <= 0 || cfg.shutdownDelay < 0 || len(cfg.corsOrigins) == 0 {
			t.Fatalf("accepted an out-of-range configuration: %+v", cfg)
		}
		if cfg.region != "" && !validRegion(cfg.region) {
			t.Fatalf("accepted REGION=%q", cfg.region)
		}
	})
}

// Package wellwritten is the yardstick the service's speed is judged by: the
// same two endpoints as a careful author writes them on bare net/http, with the
// protections the service has: http.Server's four timeouts, the same header
// limit, and the same four response headers. It has no router, no middleware,
// no logging, no panic recovery beyond net/http's own, no CORS and no drain;
// the difference between the two is what those cost, and the service is asked
// to cost no more than 1.05 times this per request.
package wellwritten

import (
	"net/http"
	"time"
)

// These are the service's limits (main.go); TestLimitsAreTheServices checks
// that they stay the same.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 5 * time.Second
	WriteTimeout      = 5 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// Handler answers GET / with the greeting for region and GET /health/ with ok.
func Handler(region string) http.Handler {
	root := []byte(`{"message":"Hello world!","region":"` + region + `"}` + "\n")
	health := []byte(`{"status":"ok"}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, root)
	})
	mux.HandleFunc("GET /health/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, health)
	})
	return mux
}

// writeJSON sends body with the headers every answer carries: its type, no
// caching (each answer names the region that gave it), no type sniffing, and
// a policy that lets no page load or frame it.
func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Write(body)
}

// Server returns the server for h on addr, with the service's limits.
func Server(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

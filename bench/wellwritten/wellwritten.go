// Package wellwritten is the yardstick the service's speed is judged by: the
// same two endpoints as a careful author writes them on bare net/http, with the
// headers a JSON API should send and the one server timeout that stops
// slowloris. It has no router, no middleware, no logging, no panic recovery
// beyond net/http's own, no CORS, no body limit and no drain; the service has
// all of those and is asked to cost no more CPU per request than this.
package wellwritten

import (
	"net/http"
	"time"
)

// ReadHeaderTimeout bounds the time a client may take to send its headers.
const ReadHeaderTimeout = 5 * time.Second

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
// caching (each answer names the region that gave it), and no type sniffing.
func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}

// Server returns the server for h on addr, with ReadHeaderTimeout set.
func Server(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: ReadHeaderTimeout}
}

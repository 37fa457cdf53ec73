package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
)

// newHandler returns the service's whole HTTP handler: middleware, routes and the
// JSON answers for unknown paths and wrong methods. draining is set by shutdown.
func newHandler(logger *slog.Logger, cfg config, loc location, draining *atomic.Bool) http.Handler {
	r := chi.NewRouter()
	r.Use(middlewares(logger, cfg, loc, draining)...)
	addRoutes(r, cfg, loc, draining)
	r.NotFound(handleNotFound)
	r.MethodNotAllowed(handleMethodNotAllowed(r))
	return r
}

// middlewares lists the middleware every request goes through, outermost first.
func middlewares(logger *slog.Logger, cfg config, loc location, draining *atomic.Bool) []func(http.Handler) http.Handler {
	var mw []func(http.Handler) http.Handler
	// Access logging is for debugging: Cloud Run already logs every request.
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		mw = append(mw, logRequests(logger, loc.project))
	}
	mw = append(mw,
		recoverPanic(logger, loc.project),
		closeWhileDraining(draining),
		setResponseHeaders,
		// CORS before the redirect: a preflight must be answered, not redirected.
		corsForBrowsers(cors.Options{
			AllowedOrigins: cfg.corsOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodHead},
			MaxAge:         3600,
		}))
	if cfg.httpsRedirect {
		mw = append(mw, redirectToHTTPS)
	}
	return mw
}

// addRoutes lists every route the service answers. /health/ is also served
// without its slash; both are routes, which costs a request less than a
// middleware that strips the slash.
func addRoutes(r chi.Router, cfg config, loc location, draining *atomic.Bool) {
	root := handleRoot(loc.region, cfg.service, cfg.revision)
	r.Get("/", root)
	r.Head("/", root)

	health := handleHealth(draining)
	for _, path := range []string{"/health/", "/health"} {
		r.Get(path, health)
		r.Head(path, health)
	}
}

// rootResponse is the body of GET /.
type rootResponse struct {
	Message  string `json:"message"`
	Region   string `json:"region"`
	Service  string `json:"service,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// handleRoot answers GET / with the greeting and the region of this instance.
// None of it changes after start-up, so the answer is encoded once.
func handleRoot(region, service, revision string) http.HandlerFunc {
	answer := newJSONResponse(http.StatusOK, rootResponse{
		Message:  "Hello world!",
		Region:   region,
		Service:  service,
		Revision: revision,
	})
	return func(w http.ResponseWriter, r *http.Request) {
		answer.write(w)
	}
}

// healthResponse is the body of GET /health/.
type healthResponse struct {
	Status string `json:"status"`
}

// handleHealth answers 200 {"status":"ok"} while the instance serves and
// 503 {"status":"draining"} once shutdown has begun, so that a load balancer
// that checks health stops sending it new requests.
func handleHealth(draining *atomic.Bool) http.HandlerFunc {
	ok := newJSONResponse(http.StatusOK, healthResponse{Status: "ok"})
	drain := newJSONResponse(http.StatusServiceUnavailable, healthResponse{Status: "draining"})
	return func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			drain.write(w)
			return
		}
		ok.write(w)
	}
}

// handleNotFound answers any path without a route.
func handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not found")
}

// handleMethodNotAllowed answers a known path asked with a method it does not
// serve, and lists the methods it does serve in the Allow header. chi sets Allow
// only in its own 405 handler, so the methods are found again here from mux.
// chi also sends a method it does not know (FOO) here whatever the path; a path
// that no method matches is answered 404, as with any other method.
func handleMethodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	methods := []string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
		http.MethodConnect, http.MethodTrace,
	}
	return func(w http.ResponseWriter, r *http.Request) {
		// The path chi routes on.
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		var allow []string
		for _, m := range methods {
			if mux.Match(chi.NewRouteContext(), m, path) {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			handleNotFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	}
}

// errorResponse is the one shape of every error the service answers.
type errorResponse struct {
	Error string `json:"error"`
}

// writeError writes status with the body {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	newJSONResponse(status, errorResponse{Error: msg}).write(w)
}

// jsonResponse is an answer encoded as JSON, with its header value ready. The
// fixed answers are built once at start-up, so that writing them allocates
// nothing (Header.Set would allocate a slice per request). Content-Length is
// left to net/http, which sets it for bodies this small without the cost of
// another entry in the header map.
type jsonResponse struct {
	status      int
	body        []byte
	contentType []string
}

// newJSONResponse encodes v as the body of an answer with status.
func newJSONResponse(status int, v any) jsonResponse {
	body := encodeJSON(v)
	return jsonResponse{status: status, body: body, contentType: []string{"application/json"}}
}

// write sends the answer. The header is set before WriteHeader, since after it
// it would be ignored. The value slice is shared between requests; net/http
// only reads it.
func (j jsonResponse) write(w http.ResponseWriter) {
	w.Header()["Content-Type"] = j.contentType
	w.WriteHeader(j.status)
	w.Write(j.body)
}

// encodeJSON encodes v, which must be one of this file's response types, with a
// final newline so that curl's output ends the line.
func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only structs of strings are passed here, and those always encode.
		b = []byte(`{"error":"cannot encode response"}`)
	}
	return append(b, '\n')
}

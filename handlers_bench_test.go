package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
)

// discardWriter is a ResponseWriter that keeps nothing, so that a benchmark
// measures the handler and not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchGET serves GET / through h, b.N times, as the sub-benchmark name.
func benchGET(b *testing.B, name string, h http.Handler) {
	b.Run(name, func(b *testing.B) {
		req := httptest.NewRequest("GET", "/", nil)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkRoot is GET / through the whole handler stack of the service. The
// bench module's wellwritten and baseline packages have the same benchmark;
// `make bench` runs them all and compares them with `benchstat -col /server`.
func BenchmarkRoot(b *testing.B) {
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		b.Fatal(err)
	}
	benchGET(b, "server=hello", newHandler(newLogger(io.Discard, slog.LevelInfo), cfg, location{region: "europe-west1"}, new(atomic.Bool)))
}

// BenchmarkLayers is GET / through chi and the routes alone, then with each of
// newHandler's middlewares added in turn, outermost first, so that `make
// bench` can say what each layer costs.
func BenchmarkLayers(b *testing.B) {
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		b.Fatal(err)
	}
	logger, loc, draining := newLogger(io.Discard, slog.LevelInfo), location{region: "europe-west1"}, new(atomic.Bool)
	mw := middlewares(logger, cfg, loc, draining)
	for n := 0; n <= len(mw); n++ {
		r := chi.NewRouter()
		r.Use(mw[:n]...)
		addRoutes(r, cfg, loc, draining)
		name := "layers=chi"
		if n > 0 {
			name = "layers=+" + middlewareName(mw[n-1])
		}
		benchGET(b, name, r)
	}
}

// middlewareName is the name of the function that made m: "recoverPanic" for
// the closure recoverPanic returns, whose runtime name is
// "github.com/example/hello.recoverPanic.func1" (or, inlined,
// "...hello.middlewares.recoverPanic.func1").
func middlewareName(m func(http.Handler) http.Handler) string {
	parts := strings.Split(runtime.FuncForPC(reflect.ValueOf(m).Pointer()).Name(), ".")
	for len(parts) > 1 {
		last := parts[len(parts)-1]
		if _, err := strconv.Atoi(strings.TrimPrefix(last, "func")); err != nil {
			break
		}
		parts = parts[:len(parts)-1]
	}
	return parts[len(parts)-1]
}

package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/example/hello/internal/baseline"
)

// discardWriter is a ResponseWriter that keeps nothing, so that a benchmark
// measures the handler and not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkRoot is GET / through the whole handler stack of the service, and
// through the bare net/http baseline. Compare them with
// `benchstat -col /server`, as `make bench` does.
func BenchmarkRoot(b *testing.B) {
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		b.Fatal(err)
	}
	servers := []struct {
		name string
		h    http.Handler
	}{
		{"hello", newHandler(newLogger(io.Discard, slog.LevelInfo), cfg, location{region: "europe-west1"}, new(atomic.Bool))},
		{"baseline", baseline.Handler("europe-west1")},
	}
	for _, s := range servers {
		b.Run("server="+s.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.h.ServeHTTP(w, req)
			}
		})
	}
}

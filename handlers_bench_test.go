package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so that a benchmark
// measures the handler and not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkRoot is GET / through the whole handler stack of the service. The
// bench module's baseline package has the same benchmark for the bare net/http
// floor; `make bench` runs both and compares them with `benchstat -col /server`.
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
	}
	for _, s := range servers {
		b.Run("server="+s.name, func(b *testing.B) {
			// The request's context holds its connection's scratch, as
			// newServer's ConnContext gives it.
			req := httptest.NewRequest("GET", "/", nil)
			req = req.WithContext(withConnScratch(req.Context(), nil))
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.h.ServeHTTP(w, req)
			}
		})
	}
}

// Package rootbench is BenchmarkRoot's loop for the servers of the bench
// module. It is the loop of the service's own BenchmarkRoot (server=hello), so
// that make bench can compare them with benchstat -col /server.
package rootbench

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the benchmark
// measures the handler and not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// Run benchmarks GET / through h as the sub-benchmark server=name.
func Run(b *testing.B, name string, h http.Handler) {
	b.Run("server="+name, func(b *testing.B) {
		req := httptest.NewRequest("GET", "/", nil)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

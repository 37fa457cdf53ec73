package baseline

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

// BenchmarkRoot is GET / through the baseline. It has the name and the loop of
// the service's BenchmarkRoot (server=hello), so that make bench compares the two
// with benchstat -col /server.
func BenchmarkRoot(b *testing.B) {
	b.Run("server=baseline", func(b *testing.B) {
		h := Handler("europe-west1")
		req := httptest.NewRequest("GET", "/", nil)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

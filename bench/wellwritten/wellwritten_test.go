package wellwritten

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/example/hello/bench/internal/rootbench"
)

// BenchmarkRoot is GET / through the well-written service.
func BenchmarkRoot(b *testing.B) {
	rootbench.Run(b, "wellwritten", Handler("europe-west1"))
}

// TestHandler checks that the yardstick answers what the service answers, so
// that the two are compared on the same work.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler("europe-west1"))
	defer srv.Close()
	for _, tc := range []struct {
		path, body string
	}{
		{"/", `{"message":"Hello world!","region":"europe-west1"}` + "\n"},
		{"/health/", `{"status":"ok"}` + "\n"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var buf [256]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(buf[:n]) != tc.body {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, resp.StatusCode, buf[:n], tc.body)
		}
		for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s %s = %q, want %q", tc.path, k, got, want)
			}
		}
	}
}

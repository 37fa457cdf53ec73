// Package baseline is the floor the service is measured against: the same two
// endpoints on a bare net/http ServeMux, writing the same JSON bytes, with no
// router, middleware or logging. No framework can be faster than this.
package baseline

import "net/http"

// Handler answers GET / with the greeting for region and GET /health/ with ok.
func Handler(region string) http.Handler {
	root := []byte(`{"message":"Hello world!","region":"` + region + `"}` + "\n")
	health := []byte(`{"status":"ok"}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(root)
	})
	mux.HandleFunc("GET /health/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(health)
	})
	return mux
}

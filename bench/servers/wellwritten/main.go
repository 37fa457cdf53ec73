// Command wellwritten serves bench/wellwritten, the well-written net/http
// service that the service's CPU per request is held to, on PORT for make
// bench. With LIMITS=off it serves without http.Server's four timeouts, so
// that make bench can say what they cost; that server protects nothing and is
// for the measurement only.
package main

import (
	"net/http"
	"os"

	"github.com/example/hello/bench/wellwritten"
)

func main() {
	srv := wellwritten.Server(":"+os.Getenv("PORT"), wellwritten.Handler(os.Getenv("REGION")))
	if os.Getenv("LIMITS") == "off" {
		srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 0, 0, 0, 0
	}
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

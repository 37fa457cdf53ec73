// Command wellwritten serves bench/wellwritten, the well-written net/http
// service that the service's CPU per request is held to, on PORT for make
// bench.
package main

import (
	"net/http"
	"os"

	"github.com/example/hello/bench/wellwritten"
)

func main() {
	addr := ":" + os.Getenv("PORT")
	region := os.Getenv("REGION")
	if err := wellwritten.Server(addr, wellwritten.Handler(region)).ListenAndServe(); err != nil && err != http.ErrServerClosed {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

// Command baseline serves bench/baseline, the bare net/http floor, on PORT
// for make bench.
package main

import (
	"net/http"
	"os"

	"github.com/example/hello/bench/baseline"
)

func main() {
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), baseline.Handler(os.Getenv("REGION"))); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

// Command oldgo is the smallest net/http server. The end-to-end test builds it with
// a Go release that Go's advisories name, to see make vulncheck fail on its binary.
package main

import "net/http"

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	http.ListenAndServe(":8080", nil)
}

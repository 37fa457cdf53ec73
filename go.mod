module github.com/example/hello

go 1.26.8

toolchain go1.26.10

require (
	cloud.google.com/go/compute/metadata v0.10.0
	github.com/go-chi/chi/v5 v5.5.0
	github.com/go-chi/cors v1.2.2
)

require golang.org/x/sys v0.49.0 // indirect

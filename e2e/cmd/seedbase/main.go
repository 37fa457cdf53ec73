// Command seedbase pushes the stand-in base image (internal/basestandin) to a
// registry and prints its reference, for KO_DEFAULTBASEIMAGE on a machine that
// cannot pull gcr.io/distroless: `make seed-base` pushes it to the local
// registry `make publish` uses.
//
//	seedbase localhost:5000/base/static:nonroot
package main

import (
	"fmt"
	"os"

	"github.com/example/hello/e2e/internal/basestandin"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: seedbase REGISTRY/REPOSITORY:TAG (a registry on localhost may be plain http)")
		os.Exit(2)
	}
	if err := seed(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "seedbase: %v\n", err)
		os.Exit(1)
	}
}

func seed(to string) error {
	// name.Insecure allows plain http, which go-containerregistry uses only
	// for a registry on localhost or 127.0.0.1 (name.Registry.Scheme).
	ref, err := name.ParseReference(to, name.Insecure)
	if err != nil {
		return err
	}
	img, err := basestandin.Image(basestandin.MachineCABundle())
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("pushing the base to %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(ref.Context().Digest(digest.String()).String())
	return nil
}

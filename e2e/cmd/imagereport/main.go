// Command imagereport prints a container image's platform, user, binary size and
// each layer's compressed size, with the project's size targets.
//
//	imagereport -layout dist/oci         # what `make image` wrote
//	imagereport -image REGISTRY/hello@sha256:...
//	imagereport -image REGISTRY/hello@sha256:... -extract hello   # also write the binary out
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/example/hello/e2e/internal/imageinfo"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if err := run(os.Args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "imagereport: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet(args[0], flag.ContinueOnError)
	layoutDir := flags.String("layout", "", "an OCI image layout directory, as written by ko --oci-layout-path")
	ref := flags.String("image", "", "an image reference in a registry (credentials from the Docker config)")
	extract := flags.String("extract", "", "also write the image's entrypoint binary to this file (for govulncheck -mode=binary)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	var (
		img  v1.Image
		what string
		err  error
	)
	switch {
	case *layoutDir != "" && *ref == "":
		what = *layoutDir
		img, err = fromLayout(*layoutDir)
	case *ref != "" && *layoutDir == "":
		what = *ref
		img, err = fromRegistry(*ref)
	default:
		return errors.New("give exactly one of -layout DIR or -image REF")
	}
	if err != nil {
		return err
	}
	info, err := imageinfo.Inspect(img)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	info.WriteReport(stdout, what)
	if *extract != "" {
		if err := os.WriteFile(*extract, info.Binary.Content, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote       %s (%s)\n", *extract, info.Binary.Path)
	}
	return nil
}

// fromLayout returns the linux/amd64 image in an OCI layout.
func fromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI layout (run make image first): %w", dir, err)
	}
	return findImage(idx)
}

// findImage returns the linux/amd64 image of idx, looking into nested indexes.
func findImage(idx v1.ImageIndex) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := findImage(child); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == "amd64") {
				return idx.Image(d.Digest)
			}
		}
	}
	return nil, errors.New("no linux/amd64 image in the layout")
}

// fromRegistry fetches ref with the credentials of the Docker config.
func fromRegistry(ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return remote.Image(r, remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
}

// Package imageinfo reads what the end-to-end tests and the image report need to
// know about a container image: platform, user and entrypoint, each layer's
// compressed size, which files it holds, and whether its Go binary is static and
// stripped.
package imageinfo

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Info describes an image.
type Info struct {
	Platform   string // e.g. linux/amd64
	User       string
	Entrypoint []string
	// Annotations are the manifest's; ko names the base image there
	// (org.opencontainers.image.base.name and .digest).
	Annotations map[string]string
	Layers      []Layer
	// Compressed is the sum of the layers' compressed sizes: what a pull downloads.
	Compressed int64
	// Files holds every path in the flattened file system, without a leading slash.
	Files  map[string]bool
	Binary Binary
}

// Layer is one layer of an image.
type Layer struct {
	Digest     string
	Compressed int64
	// Comment says what the layer holds: the image history's comment, or "base".
	Comment string
}

// Binary describes the entrypoint's ELF file.
type Binary struct {
	Path string
	Size int64
	// Interp is the PT_INTERP program header's dynamic loader, empty when static.
	Interp string
	// Needed lists the DT_NEEDED shared libraries.
	Needed []string
	// Symtab says the binary has a .symtab section.
	Symtab bool
	// Debug lists the .debug_* and .zdebug_* sections.
	Debug []string
	// GoVersion is the Go toolchain that built it, as `go version -m` reads it
	// (stripping leaves the build information in place).
	GoVersion string
	// Content is the file itself, for tools that read it (govulncheck -mode=binary).
	Content []byte
}

// Static reports whether the binary needs no dynamic loader and no shared library.
func (b Binary) Static() bool { return b.Interp == "" && len(b.Needed) == 0 }

// Stripped reports whether the binary has neither a symbol table nor DWARF.
func (b Binary) Stripped() bool { return !b.Symtab && len(b.Debug) == 0 }

// Inspect reads img.
func Inspect(img v1.Image) (Info, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return Info{}, fmt.Errorf("reading the config: %w", err)
	}
	info := Info{
		Platform:   cfg.OS + "/" + cfg.Architecture,
		User:       cfg.Config.User,
		Entrypoint: cfg.Config.Entrypoint,
		Files:      map[string]bool{},
	}
	if m, err := img.Manifest(); err == nil {
		info.Annotations = m.Annotations
	}
	if cfg.Variant != "" {
		info.Platform += "/" + cfg.Variant
	}

	layers, err := img.Layers()
	if err != nil {
		return Info{}, fmt.Errorf("listing layers: %w", err)
	}
	var comments []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			comments = append(comments, h.Comment)
		}
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return Info{}, err
		}
		size, err := l.Size()
		if err != nil {
			return Info{}, err
		}
		comment := "base"
		if i < len(comments) && comments[i] != "" {
			comment = comments[i]
		}
		info.Layers = append(info.Layers, Layer{Digest: d.String(), Compressed: size, Comment: comment})
		info.Compressed += size
	}

	if len(info.Entrypoint) == 0 {
		return info, errors.New("the image has no entrypoint")
	}
	binPath := strings.TrimPrefix(path.Clean(info.Entrypoint[0]), "/")
	var binary []byte
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Info{}, fmt.Errorf("reading the file system: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		info.Files[name] = true
		if name == binPath && h.Typeflag == tar.TypeReg {
			if binary, err = io.ReadAll(tr); err != nil {
				return Info{}, fmt.Errorf("reading %s: %w", binPath, err)
			}
		}
	}
	if binary == nil {
		return info, fmt.Errorf("the entrypoint %s is not a file in the image", info.Entrypoint[0])
	}
	info.Binary, err = inspectELF(info.Entrypoint[0], binary)
	return info, err
}

// inspectELF reads the headers of an ELF file.
func inspectELF(name string, b []byte) (Binary, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return Binary{}, fmt.Errorf("%s is not an ELF file: %w", name, err)
	}
	defer f.Close()
	bin := Binary{Path: name, Size: int64(len(b)), Content: b}
	if bi, err := buildinfo.Read(bytes.NewReader(b)); err == nil {
		bin.GoVersion = bi.GoVersion
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, err := io.ReadAll(p.Open())
			if err != nil {
				return Binary{}, err
			}
			bin.Interp = strings.TrimRight(string(interp), "\x00")
		}
	}
	if bin.Needed, err = f.ImportedLibraries(); err != nil {
		return Binary{}, fmt.Errorf("reading DT_NEEDED of %s: %w", name, err)
	}
	for _, s := range f.Sections {
		switch {
		case s.Name == ".symtab":
			bin.Symtab = true
		case strings.HasPrefix(s.Name, ".debug_"), strings.HasPrefix(s.Name, ".zdebug_"):
			bin.Debug = append(bin.Debug, s.Name)
		}
	}
	return bin, nil
}

// The manifest annotations in which ko records the base image.
const (
	BaseName   = "org.opencontainers.image.base.name"
	BaseDigest = "org.opencontainers.image.base.digest"
)

// Targets for the image's size: what a cold Cloud Run instance downloads.
const (
	AppLayerTarget = 3_000_000 // compressed bytes
	ImageTarget    = 5_000_000 // compressed bytes
)

// AppLayer returns the layer that holds the binary: ko's "go build output" layer,
// or the last one.
func (i Info) AppLayer() Layer {
	for _, l := range i.Layers {
		if strings.HasPrefix(l.Comment, "go build output") {
			return l
		}
	}
	if len(i.Layers) == 0 {
		return Layer{}
	}
	return i.Layers[len(i.Layers)-1]
}

// WriteReport prints the image's sizes and checks as a short table.
func (i Info) WriteReport(w io.Writer, name string) {
	fmt.Fprintf(w, "image       %s\n", name)
	fmt.Fprintf(w, "platform    %s\n", i.Platform)
	fmt.Fprintf(w, "user        %s\n", i.User)
	fmt.Fprintf(w, "entrypoint  %s\n", strings.Join(i.Entrypoint, " "))
	fmt.Fprintf(w, "base        %s@%s\n", or(i.Annotations[BaseName], "(not recorded)"), or(i.Annotations[BaseDigest], "(not recorded)"))
	fmt.Fprintf(w, "binary      %s: %s bytes (%s), static: %v, stripped: %v, built by %s\n",
		i.Binary.Path, commas(i.Binary.Size), mb(i.Binary.Size), i.Binary.Static(), i.Binary.Stripped(), or(i.Binary.GoVersion, "an unknown Go"))
	fmt.Fprintf(w, "shell       /bin/sh present: %v\n", i.Files["bin/sh"])
	fmt.Fprintf(w, "layers (compressed):\n")
	for n, l := range i.Layers {
		fmt.Fprintf(w, "  %d  %.19s  %12s bytes  %8s  %s\n", n+1, l.Digest, commas(l.Compressed), mb(l.Compressed), l.Comment)
	}
	fmt.Fprintf(w, "total       %s bytes compressed (%s)\n", commas(i.Compressed), mb(i.Compressed))
	app := i.AppLayer()
	fmt.Fprintf(w, "targets     application layer <= %s: %s (%s); whole image <= %s: %s (%s)\n",
		mb(AppLayerTarget), met(app.Compressed <= AppLayerTarget), mb(app.Compressed),
		mb(ImageTarget), met(i.Compressed <= ImageTarget), mb(i.Compressed))
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// mb formats n bytes in megabytes of 10^6 bytes.
func mb(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

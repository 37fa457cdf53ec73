package baseline

import (
	"testing"

	"github.com/example/hello/bench/internal/rootbench"
)

// BenchmarkRoot is GET / through the baseline.
func BenchmarkRoot(b *testing.B) {
	rootbench.Run(b, "baseline", Handler("europe-west1"))
}

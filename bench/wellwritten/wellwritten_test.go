package wellwritten

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/example/hello/bench/internal/rootbench"
)

// BenchmarkRoot is GET / through the well-written service.
func BenchmarkRoot(b *testing.B) {
	rootbench.Run(b, "wellwritten", Handler("europe-west1"))
}

// TestHandler checks that the yardstick answers what the service answers, with
// the same headers, so that the two are compared on the same work.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler("europe-west1"))
	defer srv.Close()
	for _, tc := range []struct {
		path, body string
	}{
		{"/", `{"message":"Hello world!","region":"europe-west1"}` + "\n"},
		{"/health/", `{"status":"ok"}` + "\n"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var buf [256]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(buf[:n]) != tc.body {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, resp.StatusCode, buf[:n], tc.body)
		}
		for k, want := range map[string]string{
			"Content-Type":            "application/json",
			"Cache-Control":           "no-store",
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s %s = %q, want %q", tc.path, k, got, want)
			}
		}
	}
}

// TestLimitsAreTheServices reads the service's limits from its main.go and
// checks that the yardstick's are the same, so that the two are compared with
// the same protections.
func TestLimitsAreTheService(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	service := map[string]time.Duration{}
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || len(spec.Values) != 1 {
			return true
		}
		if v, ok := evalConst(spec.Values[0]); ok {
			service[spec.Names[0].Name] = v
		}
		return true
	})
	for name, want := range map[string]time.Duration{
		"readHeaderTimeout": ReadHeaderTimeout,
		"readTimeout":       ReadTimeout,
		"writeTimeout":      WriteTimeout,
		"idleTimeout":       IdleTimeout,
		"maxHeaderBytes":    MaxHeaderBytes,
	} {
		got, ok := service[name]
		if !ok {
			t.Errorf("main.go has no constant %s that this test can read", name)
			continue
		}
		if got != want {
			t.Errorf("the service's %s = %v, the yardstick's %v; keep them the same", name, got, want)
		}
	}
}

// evalConst evaluates the constant expressions main.go writes its limits in:
// N * time.Second or time.Millisecond, and N << M.
func evalConst(e ast.Expr) (time.Duration, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		n, err := strconv.ParseInt(e.Value, 0, 64)
		return time.Duration(n), err == nil
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
			switch e.Sel.Name {
			case "Second":
				return time.Second, true
			case "Millisecond":
				return time.Millisecond, true
			}
		}
	case *ast.BinaryExpr:
		x, okx := evalConst(e.X)
		y, oky := evalConst(e.Y)
		if !okx || !oky {
			return 0, false
		}
		switch e.Op {
		case token.MUL:
			return x * y, true
		case token.SHL:
			return x << y, true
		}
	}
	return 0, false
}

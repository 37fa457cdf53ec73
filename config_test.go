package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// defaults is the configuration with no variable set.
var defaults = config{
	port:            8080,
	shutdownTimeout: 8 * time.Second,
	logLevel:        slog.LevelInfo,
	corsOrigins:     []string{"*"},
}

// with returns defaults changed by change.
func with(change func(*config)) config {
	c := defaults
	c.corsOrigins = slices.Clone(c.corsOrigins)
	change(&c)
	return c
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want config
	}{
		{"nothing set", nil, defaults},
		{"PORT", map[string]string{"PORT": "9090"}, with(func(c *config) { c.port = 9090 })},
		{"PORT 0 picks a free port", map[string]string{"PORT": "0"}, with(func(c *config) { c.port = 0 })},
		{"REGION", map[string]string{"REGION": "europe-west1"}, with(func(c *config) { c.region = "europe-west1" })},
		{"on Cloud Run the redirect is on", map[string]string{"K_SERVICE": "hello", "K_REVISION": "hello-1"},
			with(func(c *config) { c.service, c.revision, c.httpsRedirect = "hello", "hello-1", true })},
		{"HTTPS_REDIRECT=false wins over K_SERVICE", map[string]string{"K_SERVICE": "hello", "HTTPS_REDIRECT": "false"},
			with(func(c *config) { c.service = "hello" })},
		{"HTTPS_REDIRECT=1 without K_SERVICE", map[string]string{"HTTPS_REDIRECT": "1"}, with(func(c *config) { c.httpsRedirect = true })},
		{"durations", map[string]string{"SHUTDOWN_TIMEOUT": "500ms", "SHUTDOWN_DELAY": "2s"},
			with(func(c *config) { c.shutdownTimeout, c.shutdownDelay = 500*time.Millisecond, 2*time.Second })},
		{"LOG_LEVEL in capitals", map[string]string{"LOG_LEVEL": "DEBUG"}, with(func(c *config) { c.logLevel = slog.LevelDebug })},
		{"LOG_LEVEL warning", map[string]string{"LOG_LEVEL": "warning"}, with(func(c *config) { c.logLevel = slog.LevelWarn })},
		{"CORS_ORIGINS with spaces, a port and a wildcard", map[string]string{"CORS_ORIGINS": " https://a.example ,http://localhost:3000,https://*.example.org"},
			with(func(c *config) {
				c.corsOrigins = []string{"https://a.example", "http://localhost:3000", "https://*.example.org"}
			})},
		{"CORS_ORIGINS with IP addresses", map[string]string{"CORS_ORIGINS": "http://127.0.0.1:8080,http://[::1]:3000"},
			with(func(c *config) { c.corsOrigins = []string{"http://127.0.0.1:8080", "http://[::1]:3000"} })},
		{"GCE_METADATA_HOST", map[string]string{"GCE_METADATA_HOST": "127.0.0.1:9"}, with(func(c *config) { c.metadataHost = "127.0.0.1:9" })},
		{"GOOGLE_CLOUD_PROJECT", map[string]string{"GOOGLE_CLOUD_PROJECT": "my-project-123"}, with(func(c *config) { c.projectID = "my-project-123" })},
		{"GOOGLE_CLOUD_PROJECT domain-scoped", map[string]string{"GOOGLE_CLOUD_PROJECT": "example.com:my-project"}, with(func(c *config) { c.projectID = "example.com:my-project" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(mapEnv(tt.env))
			if err != nil {
				t.Fatalf("loadConfig(%v): %v", tt.env, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("loadConfig(%v) = %+v, want %+v", tt.env, got, tt.want)
			}
		})
	}
}

func TestCORSOrigins(t *testing.T) {
	t.Parallel()
	for origin, ok := range map[string]bool{
		"*": true, "https://example.com": true, "http://localhost": true, "http://localhost:3000": true,
		"https://*.example.com": true, "https://a-b.example.co.uk:8443": true, "http://[::1]:8080": true,
		"https://a b":             false, // a space
		"http://*":                false, // a wildcard for everything
		"https://*.com":           false, // a whole top-level domain
		"https://a.*.example.com": false, // a wildcard not first
		"https://example.com/":    false, "https://example.com/app": false, "https://example.com?x": false,
		"https://user@example.com": false, "ftp://example.com": false, "example.com": false,
		"https://": false, "https://example.com:0": false, "https://example.com:70000": false,
		"https://example.com:": false, "https://example.com:08080": false, "https://-a.example": false,
		"https://a..example": false, "http://::1": false,
	} {
		_, err := parseOrigins(origin)
		if (err == nil) != ok {
			t.Errorf("CORS_ORIGINS=%q accepted = %v, want %v (%v)", origin, err == nil, ok, err)
		}
	}
}

// TestEveryVariableIsDocumented checks -h and the README's table against the one
// list loadConfig reads: every variable, with its default, in both.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	var help syncBuffer
	if err := run(t.Context(), []string{"hello", "-h"}, mapEnv(nil), io.Discard, &help); err != nil {
		t.Fatalf("hello -h: %v", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The table's rows, in the Configuration section: | `NAME` | default | meaning |,
	// or `A`, `B` for two.
	start := bytes.Index(readme, []byte("\n## Configuration\n"))
	if start < 0 {
		t.Fatal("the README has no Configuration section")
	}
	section, _, _ := strings.Cut(string(readme[start:]), "\n## Endpoints")
	table := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+`(?:, )?)+) \\| ([^|]*) \\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, name := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
			table[name[1]] = m[2]
		}
	}
	names := map[string]bool{}
	for _, v := range variables() {
		names[v.name] = true
		line := regexp.MustCompile(`(?m)^  ` + v.name + ` .*$`).FindString(help.String())
		if line == "" {
			t.Errorf("hello -h does not list %s", v.name)
		} else if v.def != "" && !strings.Contains(line, "(default "+v.def+")") {
			t.Errorf("hello -h line %q does not give the default %s", line, v.def)
		}
		def, ok := table[v.name]
		switch {
		case !ok:
			t.Errorf("the README's configuration table does not list %s", v.name)
		case v.def != "" && !strings.Contains(def, "`"+v.def+"`"):
			t.Errorf("the README gives %s the default %q, want `%s`", v.name, strings.TrimSpace(def), v.def)
		}
	}
	for name := range table {
		if !names[name] {
			t.Errorf("the README's configuration table lists %s, which the service does not read", name)
		}
	}
}

func TestBadConfigIsAnErrorNamingTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, []string{`PORT="abc"`}},
		{"PORT too large", map[string]string{"PORT": "70000"}, []string{`PORT="70000"`}},
		{"PORT negative", map[string]string{"PORT": "-1"}, []string{`PORT="-1"`}},
		{"SHUTDOWN_TIMEOUT not a duration", map[string]string{"SHUTDOWN_TIMEOUT": "banana"}, []string{`SHUTDOWN_TIMEOUT="banana"`}},
		{"SHUTDOWN_TIMEOUT without a unit", map[string]string{"SHUTDOWN_TIMEOUT": "8"}, []string{`SHUTDOWN_TIMEOUT="8"`}},
		{"SHUTDOWN_TIMEOUT zero", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{`SHUTDOWN_TIMEOUT="0s"`}},
		{"SHUTDOWN_DELAY negative", map[string]string{"SHUTDOWN_DELAY": "-1s"}, []string{`SHUTDOWN_DELAY="-1s"`}},
		{"HTTPS_REDIRECT", map[string]string{"HTTPS_REDIRECT": "yes please"}, []string{`HTTPS_REDIRECT="yes please"`}},
		{"LOG_LEVEL", map[string]string{"LOG_LEVEL": "verbose"}, []string{`LOG_LEVEL="verbose"`}},
		{"GOOGLE_CLOUD_PROJECT a project number", map[string]string{"GOOGLE_CLOUD_PROJECT": "123456789012"}, []string{`GOOGLE_CLOUD_PROJECT="123456789012"`}},
		{"GOOGLE_CLOUD_PROJECT in capitals", map[string]string{"GOOGLE_CLOUD_PROJECT": "My-Project"}, []string{`GOOGLE_CLOUD_PROJECT="My-Project"`}},
		{"GOOGLE_CLOUD_PROJECT ending in a hyphen", map[string]string{"GOOGLE_CLOUD_PROJECT": "my-project-"}, []string{`GOOGLE_CLOUD_PROJECT="my-project-"`}},
		{"GOOGLE_CLOUD_PROJECT empty domain", map[string]string{"GOOGLE_CLOUD_PROJECT": ":my-project"}, []string{`GOOGLE_CLOUD_PROJECT=":my-project"`}},
		{"REGION with a space", map[string]string{"REGION": "europe west1"}, []string{`REGION="europe west1"`}},
		{"CORS_ORIGINS without scheme", map[string]string{"CORS_ORIGINS": "example.com"}, []string{`CORS_ORIGINS="example.com"`}},
		{"CORS_ORIGINS with a path", map[string]string{"CORS_ORIGINS": "https://example.com/app"}, []string{`CORS_ORIGINS="https://example.com/app"`}},
		{"CORS_ORIGINS empty entry", map[string]string{"CORS_ORIGINS": "https://a.example,,"}, []string{`CORS_ORIGINS="https://a.example,,"`}},
		{"CORS_ORIGINS with a space", map[string]string{"CORS_ORIGINS": "https://a b"}, []string{`CORS_ORIGINS="https://a b"`}},
		{"CORS_ORIGINS http://*", map[string]string{"CORS_ORIGINS": "http://*"}, []string{`CORS_ORIGINS="http://*"`}},
		{"every bad variable at once", map[string]string{"PORT": "abc", "SHUTDOWN_TIMEOUT": "banana", "LOG_LEVEL": "loud"},
			[]string{`PORT="abc"`, `SHUTDOWN_TIMEOUT="banana"`, `LOG_LEVEL="loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// With its context already cancelled, a run that wrongly accepted the
			// configuration would start, stop at once and return nil.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			env := map[string]string{"PORT": "0"}
			for k, v := range tt.env {
				env[k] = v
			}
			stdout := new(syncBuffer)
			err := run(ctx, []string{"hello"}, mapEnv(env), stdout, io.Discard)
			if err == nil {
				t.Fatalf("run(%v) = nil, want a configuration error", tt.env)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%v) = %q, want it to name %s", tt.env, err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "bad configuration") {
				t.Errorf("run(%v) = %q, want a bad configuration error", tt.env, err)
			}
			if stdout.Len() != 0 {
				t.Errorf("run(%v) logged %q before failing, want nothing", tt.env, stdout)
			}
		})
	}
}

// TestRunArguments: configuration comes from the environment, so the only
// arguments are -version and -h; anything else is an error that names the
// argument that is wrong, whatever comes after it.
func TestRunArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		// wantErr is part of the error; empty means run returns nil.
		wantErr    string
		wantStdout string // part of stdout
		wantStderr string // part of stderr
	}{
		{args: []string{"-version"}, wantStdout: buildVersion()},
		{args: []string{"--version"}, wantStdout: buildVersion()},
		{args: []string{"-h"}, wantStderr: "SHUTDOWN_DELAY"},
		{args: []string{"-help"}, wantStderr: "SHUTDOWN_DELAY"},
		{args: []string{"--help"}, wantStderr: "SHUTDOWN_DELAY"},
		{args: []string{"-h", "serve"}, wantStderr: "Usage: hello [-version]"},
		{args: []string{"serve"}, wantErr: `unexpected argument "serve"`},
		{args: []string{"-version", "serve"}, wantErr: `unexpected argument "serve"`},
		{args: []string{"-x"}, wantErr: "flag provided but not defined: -x", wantStderr: "flag provided but not defined: -x"},
		{args: []string{"-bogus", "-version"}, wantErr: "-bogus"},
		{args: []string{"-version=maybe"}, wantErr: `invalid boolean value "maybe" for -version`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			stdout, stderr := new(syncBuffer), new(syncBuffer)
			err := run(t.Context(), append([]string{"hello"}, tt.args...), mapEnv(nil), stdout, stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("run(hello %s) = %v, want nil", strings.Join(tt.args, " "), err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("run(hello %s) = %v, want an error with %q", strings.Join(tt.args, " "), err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(hello %s) stdout = %q, want %q in it", strings.Join(tt.args, " "), stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(hello %s) stderr = %q, want %q in it", strings.Join(tt.args, " "), stderr, tt.wantStderr)
			}
		})
	}
}

func TestMainExitsNonZeroOnBadConfig(t *testing.T) {
	t.Parallel()
	_, stdout, stderr, done := startMain(t, "PORT=abc")
	err := waitExit(t, done)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("with PORT=abc the command ended with %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), `PORT="abc"`) {
		t.Errorf("stderr = %q, want it to name PORT", stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing before the configuration error", stdout)
	}
}

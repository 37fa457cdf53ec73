package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatalf("loadConfig with no environment: %v", err)
	}
	if cfg.port != 8080 || cfg.region != "" || cfg.httpsRedirect || cfg.shutdownTimeout != 8*time.Second ||
		cfg.shutdownDelay != 0 || cfg.logLevel != slog.LevelInfo || !slices.Equal(cfg.corsOrigins, []string{"*"}) {
		t.Errorf("defaults = %+v, want port 8080, no redirect, timeout 8s, delay 0, info, CORS *", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(config) bool
		want  string
	}{
		{"PORT", map[string]string{"PORT": "9090"}, func(c config) bool { return c.port == 9090 }, "port 9090"},
		{"PORT 0 picks a free port", map[string]string{"PORT": "0"}, func(c config) bool { return c.port == 0 }, "port 0"},
		{"redirect on with K_SERVICE", map[string]string{"K_SERVICE": "hello"}, func(c config) bool { return c.httpsRedirect }, "redirect on"},
		{"HTTPS_REDIRECT=false wins over K_SERVICE", map[string]string{"K_SERVICE": "hello", "HTTPS_REDIRECT": "false"}, func(c config) bool { return !c.httpsRedirect }, "redirect off"},
		{"HTTPS_REDIRECT=true without K_SERVICE", map[string]string{"HTTPS_REDIRECT": "1"}, func(c config) bool { return c.httpsRedirect }, "redirect on"},
		{"durations", map[string]string{"SHUTDOWN_TIMEOUT": "500ms", "SHUTDOWN_DELAY": "2s"}, func(c config) bool {
			return c.shutdownTimeout == 500*time.Millisecond && c.shutdownDelay == 2*time.Second
		}, "timeout 500ms, delay 2s"},
		{"LOG_LEVEL in capitals", map[string]string{"LOG_LEVEL": "DEBUG"}, func(c config) bool { return c.logLevel == slog.LevelDebug }, "debug"},
		{"LOG_LEVEL warning", map[string]string{"LOG_LEVEL": "warning"}, func(c config) bool { return c.logLevel == slog.LevelWarn }, "warn"},
		{"CORS_ORIGINS list with spaces", map[string]string{"CORS_ORIGINS": " https://a.example ,http://localhost:3000"}, func(c config) bool {
			return slices.Equal(c.corsOrigins, []string{"https://a.example", "http://localhost:3000"})
		}, "two origins"},
		{"REGION", map[string]string{"REGION": "europe-west1"}, func(c config) bool { return c.region == "europe-west1" }, "europe-west1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(mapEnv(tt.env))
			if err != nil {
				t.Fatalf("loadConfig(%v): %v", tt.env, err)
			}
			if !tt.check(cfg) {
				t.Errorf("loadConfig(%v) = %+v, want %s", tt.env, cfg, tt.want)
			}
		})
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
		{"REGION with a space", map[string]string{"REGION": "europe west1"}, []string{`REGION="europe west1"`}},
		{"CORS_ORIGINS without scheme", map[string]string{"CORS_ORIGINS": "example.com"}, []string{`CORS_ORIGINS="example.com"`}},
		{"CORS_ORIGINS with a path", map[string]string{"CORS_ORIGINS": "https://example.com/app"}, []string{`CORS_ORIGINS="https://example.com/app"`}},
		{"CORS_ORIGINS empty entry", map[string]string{"CORS_ORIGINS": "https://a.example,,"}, []string{`CORS_ORIGINS="https://a.example,,"`}},
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

func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"hello", "serve"}, mapEnv(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "serve"`) {
		t.Errorf("run(hello serve) = %v, want an unexpected argument error", err)
	}
	stdout := new(syncBuffer)
	if err := run(t.Context(), []string{"hello", "-version"}, mapEnv(nil), stdout, io.Discard); err != nil || stdout.Len() == 0 {
		t.Errorf("run(hello -version) = %v with output %q, want a version and nil", err, stdout)
	}
	stderr := new(syncBuffer)
	if err := run(t.Context(), []string{"hello", "-h"}, mapEnv(nil), io.Discard, stderr); err != nil || !strings.Contains(stderr.String(), "SHUTDOWN_DELAY") {
		t.Errorf("run(hello -h) = %v with help %q, want nil and the configuration list", err, stderr)
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

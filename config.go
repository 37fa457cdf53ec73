package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// config is everything run takes from the environment.
type config struct {
	port            int
	region          string
	service         string
	revision        string
	httpsRedirect   bool
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	logLevel        slog.Level
	corsOrigins     []string
	metadataHost    string
	projectID       string
}

// variable is one environment variable: its name, its default as it would be
// written in the environment, what it means, and how it sets its field of config.
// An empty value means the variable is unset: the default applies.
type variable struct {
	name    string
	def     string
	meaning string
	// set parses v into c, or says what a good value looks like.
	set func(c *config, v string) error
}

// variables lists every variable the service reads, in the order they are read
// (HTTPS_REDIRECT's default depends on K_SERVICE). loadConfig, the -h text and the
// README's table all come from this one list; a test checks the README against it.
func variables() []variable {
	return []variable{
		{"PORT", "8080", "port to listen on, all interfaces; Cloud Run sets it; 0 picks a free port",
			func(c *config, v string) (err error) {
				c.port, err = strconv.Atoi(v)
				if err != nil || c.port < 0 || c.port > 65535 {
					return errors.New("a port number from 0 to 65535")
				}
				return nil
			}},
		{"REGION", "", "region to report; wins over the metadata server",
			func(c *config, v string) error {
				if v != "" && !validRegion(v) {
					return errors.New("a region name such as europe-west1 (letters, digits, '-', '_', '.')")
				}
				c.region = v
				return nil
			}},
		{"K_SERVICE", "", "Cloud Run service name (Cloud Run sets it); reported by GET /; set means: on Cloud Run, ask the metadata server",
			func(c *config, v string) error { c.service = v; return nil }},
		{"K_REVISION", "", "Cloud Run revision (Cloud Run sets it); reported by GET /",
			func(c *config, v string) error { c.revision = v; return nil }},
		{"HTTPS_REDIRECT", "", "true/false: redirect X-Forwarded-Proto: http to https (unset: true when K_SERVICE is set)",
			func(c *config, v string) (err error) {
				if v == "" {
					c.httpsRedirect = c.service != ""
					return nil
				}
				if c.httpsRedirect, err = strconv.ParseBool(v); err != nil {
					return errors.New("true or false")
				}
				return nil
			}},
		{"SHUTDOWN_TIMEOUT", "8s", "time requests in progress get to finish after SIGTERM (after SHUTDOWN_DELAY)",
			func(c *config, v string) (err error) {
				if c.shutdownTimeout, err = time.ParseDuration(v); err != nil || c.shutdownTimeout <= 0 {
					return errors.New("a positive duration such as 8s or 500ms")
				}
				return nil
			}},
		{"SHUTDOWN_DELAY", "0", "after SIGTERM, keep serving this long with /health/ at 503, so a health-checking balancer moves away first",
			func(c *config, v string) (err error) {
				if c.shutdownDelay, err = time.ParseDuration(v); err != nil || c.shutdownDelay < 0 {
					return errors.New("a duration such as 0, 2s or 500ms")
				}
				return nil
			}},
		{"LOG_LEVEL", "info", "debug, info, warn or error; debug also logs every request",
			func(c *config, v string) error {
				level, ok := parseLevel(v)
				if !ok {
					return errors.New("debug, info, warn or error")
				}
				c.logLevel = level
				return nil
			}},
		{"CORS_ORIGINS", "*", "comma-separated origins CORS allows: *, or scheme://host[:port], with *. allowed as the first label",
			func(c *config, v string) (err error) {
				c.corsOrigins, err = parseOrigins(v)
				return err
			}},
		{"GOOGLE_CLOUD_PROJECT", "", "project id that ties log lines to traces; unset on Cloud Run: asked of the metadata server beside the first answers",
			func(c *config, v string) error {
				if v != "" && !validProjectID(v) {
					return errors.New("a project id such as my-project-123 (lowercase letters, digits, '-'; example.com:my-project for a domain-scoped one)")
				}
				c.projectID = v
				return nil
			}},
		{"GCE_METADATA_HOST", "", "host:port of a substitute metadata server (tests use it)",
			func(c *config, v string) error { c.metadataHost = v; return nil }},
	}
}

// loadConfig reads and validates the configuration. It reports every bad variable
// at once, each by name, so that one failed deploy shows all that needs fixing.
func loadConfig(getenv func(string) string) (config, error) {
	var cfg config
	var errs []error
	for _, v := range variables() {
		value := getenv(v.name)
		if value == "" {
			value = v.def
		}
		if err := v.set(&cfg, value); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want %w", v.name, value, err))
		}
	}
	return cfg, errors.Join(errs...)
}

// usage is the -h text: the variables, from the same list loadConfig reads.
func usage() string {
	var b strings.Builder
	b.WriteString("Configuration (environment variables):\n")
	for _, v := range variables() {
		fmt.Fprintf(&b, "  %-18s %s", v.name, v.meaning)
		if v.def != "" {
			fmt.Fprintf(&b, " (default %s)", v.def)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// validRegion reports whether s can be a region name such as europe-west1 or
// local-dev: 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit.
func validRegion(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// parseLevel reads a LOG_LEVEL value, in any case.
func parseLevel(v string) (slog.Level, bool) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// parseOrigins splits a comma-separated CORS_ORIGINS value. Each entry is "*" or an
// origin as browsers send it: http or https, "://", a host, and an optional port;
// the host's first label may be "*" to allow every subdomain of the rest.
func parseOrigins(v string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			return nil, errors.New("origins separated by commas, with none empty")
		}
		if o != "*" && !validOrigin(o) {
			return nil, fmt.Errorf("* or origins like https://example.com, http://localhost:3000 or https://*.example.com (scheme, host and port only), not %q", o)
		}
		origins = append(origins, o)
	}
	return origins, nil
}

// validOrigin reports whether o is scheme://host[:port] with scheme http or https,
// a host of DNS labels (the first may be "*") or an IP address, and a port from 1
// to 65535.
func validOrigin(o string) bool {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return false
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 || port != strconv.Itoa(p) {
			return false
		}
		host = h
	} else if strings.HasPrefix(rest, "[") || strings.Contains(rest, ":") {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		// An IPv6 address must have come in brackets.
		return !strings.Contains(host, ":") || strings.HasPrefix(rest, "[")
	}
	labels := strings.Split(host, ".")
	if labels[0] == "*" {
		labels = labels[1:]
		if len(labels) < 2 {
			return false // *.com would allow a whole top-level domain
		}
	}
	for _, l := range labels {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

// validLabel reports whether l is a DNS label: 1 to 63 letters, digits and
// hyphens, not starting or ending with a hyphen.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validProjectID reports whether s can be a Google Cloud project id: 6 to 30
// lowercase letters, digits and hyphens, starting with a letter and not ending
// with a hyphen, optionally after a domain and a colon (example.com:my-project,
// the legacy domain-scoped form).
func validProjectID(s string) bool {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		domain := s[:i]
		if domain == "" || strings.Trim(domain, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
			return false
		}
		s = s[i+1:]
	}
	if len(s) < 6 || len(s) > 30 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

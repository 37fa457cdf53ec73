package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// These keys make Cloud Logging file a JSON log line under the request's trace.
const (
	traceKey        = "logging.googleapis.com/trace"
	spanKey         = "logging.googleapis.com/spanId"
	traceSampledKey = "logging.googleapis.com/trace_sampled"
)

// newLogger returns a logger that writes one JSON object a line to w, in the shape
// Cloud Logging reads as a structured log entry: "severity", "message" and "time".
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: cloudLoggingAttr,
	}))
}

// cloudLoggingAttr renames slog's "level" and "msg" to Cloud Logging's "severity"
// and "message", with severities spelt as Cloud Logging spells them.
func cloudLoggingAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		level, _ := a.Value.Any().(slog.Level)
		return slog.String("severity", severity(level))
	case slog.MessageKey:
		return slog.Attr{Key: "message", Value: a.Value}
	}
	return a
}

// severity maps a slog level to a Cloud Logging LogSeverity.
func severity(level slog.Level) string {
	switch {
	case level >= slog.LevelError:
		return "ERROR"
	case level >= slog.LevelWarn:
		return "WARNING"
	case level >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// traceAttrs returns the fields that tie a request's log line to its trace in
// Cloud Logging, or nil when the project is unknown or the request carries no
// valid traceparent or X-Cloud-Trace-Context header. traceparent wins when both do.
func traceAttrs(projectID string, h http.Header) []slog.Attr {
	if projectID == "" {
		return nil
	}
	traceID, spanID, sampled, ok := parseTraceparent(h.Get("Traceparent"))
	if !ok {
		traceID, spanID, sampled, ok = parseCloudTraceContext(h.Get("X-Cloud-Trace-Context"))
	}
	if !ok {
		return nil
	}
	attrs := []slog.Attr{
		slog.String(traceKey, "projects/"+projectID+"/traces/"+traceID),
		slog.Bool(traceSampledKey, sampled),
	}
	if spanID != "" {
		attrs = append(attrs, slog.String(spanKey, spanID))
	}
	return attrs
}

// parseTraceparent reads a W3C traceparent header: 00-TRACEID-SPANID-FLAGS, with a
// 32-digit and a 16-digit lowercase hex id, neither all zeros.
func parseTraceparent(v string) (traceID, spanID string, sampled, ok bool) {
	parts := strings.Split(v, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || !isHex(parts[0]) {
		return "", "", false, false
	}
	// Version 00 has exactly four fields; later versions may add more.
	if parts[0] == "00" && len(parts) != 4 {
		return "", "", false, false
	}
	traceID, spanID, flags := parts[1], parts[2], parts[3]
	if len(traceID) != 32 || !isHex(traceID) || isZeros(traceID) ||
		len(spanID) != 16 || !isHex(spanID) || isZeros(spanID) ||
		len(flags) != 2 || !isHex(flags) {
		return "", "", false, false
	}
	f, _ := strconv.ParseUint(flags, 16, 8)
	return traceID, spanID, f&1 == 1, true
}

// parseCloudTraceContext reads Google's X-Cloud-Trace-Context header:
// TRACE_ID/SPAN_ID;o=OPTIONS, with a 32-digit hex trace id and a decimal span id.
// The span id is returned in the 16-digit hex form Cloud Logging expects.
func parseCloudTraceContext(v string) (traceID, spanID string, sampled, ok bool) {
	v, options, _ := strings.Cut(v, ";")
	traceID, span, hasSpan := strings.Cut(v, "/")
	traceID = strings.ToLower(traceID)
	if len(traceID) != 32 || !isHex(traceID) || isZeros(traceID) {
		return "", "", false, false
	}
	if hasSpan && span != "" {
		n, err := strconv.ParseUint(span, 10, 64)
		if err != nil {
			return "", "", false, false
		}
		if n != 0 {
			spanID = fmt.Sprintf("%016x", n)
		}
	}
	return traceID, spanID, options == "o=1", true
}

// isHex reports whether s is lowercase hexadecimal.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// isZeros reports whether s is all '0'.
func isZeros(s string) bool {
	return strings.Trim(s, "0") == ""
}

package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
)

func TestLogShapeIsCloudLogging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelWarn, "WARNING"},
		{slog.LevelError, "ERROR"},
	}
	for _, tt := range tests {
		logs := new(syncBuffer)
		newLogger(logs, slog.LevelDebug).Log(t.Context(), tt.level, "hi", "k", "v")
		var entry map[string]any
		if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, logs)
		}
		if entry["severity"] != tt.want || entry["message"] != "hi" || entry["k"] != "v" || entry["time"] == nil {
			t.Errorf("%v logged %v, want severity %q, message \"hi\", time and k", tt.level, entry, tt.want)
		}
		if _, ok := entry["level"]; ok {
			t.Errorf("%v logged a \"level\" key; Cloud Logging reads \"severity\"", tt.level)
		}
		if _, ok := entry["msg"]; ok {
			t.Errorf("%v logged a \"msg\" key; Cloud Logging reads \"message\"", tt.level)
		}
	}
}

func TestLogLevelFilters(t *testing.T) {
	t.Parallel()
	logs := new(syncBuffer)
	logger := newLogger(logs, slog.LevelWarn)
	logger.Info("quiet")
	if logs.Len() != 0 {
		t.Errorf("Info at level WARN logged %q, want nothing", logs)
	}
	logger.Warn("loud")
	if logs.Len() == 0 {
		t.Errorf("Warn at level WARN logged nothing")
	}
}

func TestTraceAttrs(t *testing.T) {
	t.Parallel()
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanHex = "00f067aa0ba902b7"
	)
	tests := []struct {
		name        string
		project     string
		header      map[string]string
		wantTrace   string // "" means no trace fields at all
		wantSpan    string
		wantSampled bool
	}{
		{
			name: "traceparent sampled", project: "p",
			header:    map[string]string{"Traceparent": "00-" + traceID + "-" + spanHex + "-01"},
			wantTrace: "projects/p/traces/" + traceID, wantSpan: spanHex, wantSampled: true,
		},
		{
			name: "traceparent not sampled", project: "p",
			header:    map[string]string{"Traceparent": "00-" + traceID + "-" + spanHex + "-00"},
			wantTrace: "projects/p/traces/" + traceID, wantSpan: spanHex,
		},
		{
			name: "traceparent of a later version with more fields", project: "p",
			header:    map[string]string{"Traceparent": "01-" + traceID + "-" + spanHex + "-01-extra"},
			wantTrace: "projects/p/traces/" + traceID, wantSpan: spanHex, wantSampled: true,
		},
		{
			name: "X-Cloud-Trace-Context", project: "p",
			header:    map[string]string{"X-Cloud-Trace-Context": "105445AA7843BC8BF206B12000100000/2;o=1"},
			wantTrace: "projects/p/traces/105445aa7843bc8bf206b12000100000", wantSpan: "0000000000000002", wantSampled: true,
		},
		{
			name: "X-Cloud-Trace-Context without span or options", project: "p",
			header:    map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"},
			wantTrace: "projects/p/traces/105445aa7843bc8bf206b12000100000",
		},
		{
			name: "traceparent wins over X-Cloud-Trace-Context", project: "p",
			header: map[string]string{
				"Traceparent":           "00-" + traceID + "-" + spanHex + "-01",
				"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/2;o=1",
			},
			wantTrace: "projects/p/traces/" + traceID, wantSpan: spanHex, wantSampled: true,
		},
		{
			name: "bad traceparent falls back to X-Cloud-Trace-Context", project: "p",
			header: map[string]string{
				"Traceparent":           "00-nothex-" + spanHex + "-01",
				"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/2;o=0",
			},
			wantTrace: "projects/p/traces/105445aa7843bc8bf206b12000100000", wantSpan: "0000000000000002",
		},
		{name: "unknown project", project: "", header: map[string]string{"Traceparent": "00-" + traceID + "-" + spanHex + "-01"}},
		{name: "no header", project: "p"},
		{name: "traceparent version ff", project: "p", header: map[string]string{"Traceparent": "ff-" + traceID + "-" + spanHex + "-01"}},
		{name: "traceparent all-zero trace", project: "p", header: map[string]string{"Traceparent": "00-00000000000000000000000000000000-" + spanHex + "-01"}},
		{name: "traceparent all-zero span", project: "p", header: map[string]string{"Traceparent": "00-" + traceID + "-0000000000000000-01"}},
		{name: "traceparent uppercase", project: "p", header: map[string]string{"Traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + spanHex + "-01"}},
		{name: "traceparent v00 with extra field", project: "p", header: map[string]string{"Traceparent": "00-" + traceID + "-" + spanHex + "-01-x"}},
		{name: "traceparent short trace", project: "p", header: map[string]string{"Traceparent": "00-4bf92f-" + spanHex + "-01"}},
		{name: "X-Cloud-Trace-Context short", project: "p", header: map[string]string{"X-Cloud-Trace-Context": "abc/1;o=1"}},
		{name: "X-Cloud-Trace-Context span not a number", project: "p", header: map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/zz;o=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got := map[string]any{}
			for _, a := range traceAttrs(tt.project, h) {
				got[a.Key] = a.Value.Any()
			}
			if tt.wantTrace == "" {
				if len(got) != 0 {
					t.Errorf("traceAttrs = %v, want none", got)
				}
				return
			}
			if got[traceKey] != tt.wantTrace {
				t.Errorf("trace = %v, want %q", got[traceKey], tt.wantTrace)
			}
			if span, _ := got[spanKey].(string); span != tt.wantSpan {
				t.Errorf("spanId = %q, want %q", span, tt.wantSpan)
			}
			if got[traceSampledKey] != tt.wantSampled {
				t.Errorf("trace_sampled = %v, want %v", got[traceSampledKey], tt.wantSampled)
			}
		})
	}
}

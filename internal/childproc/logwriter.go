package childproc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

const (
	maxLogLine = 16 << 10 // longer child output lines are cut
	keepLines  = 4        // last lines kept for error messages
)

// logWriter turns a child's stdout or stderr into slog records. A line that
// is a slog JSON record (a rehabrtc child) keeps its level, message and
// attributes; any other line is logged at info as "line".
type logWriter struct {
	log    *slog.Logger
	stream string

	mu   sync.Mutex // guards the fields below
	buf  []byte
	last []string
}

func newLogWriter(log *slog.Logger, stream string) *logWriter {
	return &logWriter{log: log, stream: stream}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLogLine {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// setLogger replaces the logger (to add the pid once it is known).
func (w *logWriter) setLogger(log *slog.Logger) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = log
}

// tail returns the last lines written, for an error message.
func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, " | ")
}

// emit logs one line. The caller holds w.mu.
func (w *logWriter) emit(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	level, msg, attrs, ok := parseRecord(line)
	text := line
	if ok {
		text = msg + errText(attrs)
	} else {
		level, msg, attrs = slog.LevelInfo, "child output", []any{"line", line}
	}
	w.last = append(w.last, text)
	if len(w.last) > keepLines {
		w.last = w.last[1:]
	}
	w.log.Log(context.Background(), level, msg, append(attrs, logKeyStream, w.stream)...)
}

// parseRecord decodes a line of slog's JSON handler.
func parseRecord(line string) (slog.Level, string, []any, bool) {
	if !strings.HasPrefix(line, "{") {
		return 0, "", nil, false
	}
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil {
		return 0, "", nil, false
	}
	lv, _ := rec["level"].(string)
	msg, ok := rec["msg"].(string)
	var level slog.Level
	if !ok || level.UnmarshalText([]byte(lv)) != nil {
		return 0, "", nil, false
	}
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if k != "time" && k != "level" && k != "msg" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	attrs := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		attrs = append(attrs, k, rec[k])
	}
	return level, msg, attrs, true
}

// errText renders the err attribute of a record, if any, for tail.
func errText(attrs []any) string {
	for i := 0; i+1 < len(attrs); i += 2 {
		if s, ok := attrs[i+1].(string); ok && attrs[i] == "err" {
			return ": " + s
		}
	}
	return ""
}

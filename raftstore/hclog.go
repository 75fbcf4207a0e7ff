package raftstore

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hcLogger routes hashicorp's hclog (used by raft and raft-wal) into a
// *slog.Logger. Repeated warnings and errors with the same message (raft
// logs every failed heartbeat to a dead peer) are passed at most once per
// second per message, with a count of the ones held back.
type hcLogger struct {
	base    *slog.Logger // without component and implied args
	l       *slog.Logger
	name    string
	implied []any
	limit   *logLimiter
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLog(l *slog.Logger, name string) *hcLogger {
	return &hcLogger{base: l, l: l.With("component", name), name: name, limit: &logLimiter{last: map[string]limitEntry{}}}
}

type limitEntry struct {
	at         time.Time
	suppressed int
}

type logLimiter struct {
	mu   sync.Mutex
	last map[string]limitEntry
}

// allow reports whether msg may be logged now, and how many were held back.
func (ll *logLimiter) allow(msg string, now time.Time) (bool, int) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	e, ok := ll.last[msg]
	if ok && now.Sub(e.at) < time.Second {
		e.suppressed++
		ll.last[msg] = e
		return false, 0
	}
	if len(ll.last) > 1024 {
		clear(ll.last)
	}
	ll.last[msg] = limitEntry{at: now}
	return true, e.suppressed
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Log implements hclog.Logger.
func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lvl := slogLevel(level)
	if !h.l.Enabled(context.Background(), lvl) {
		return
	}
	if lvl >= slog.LevelWarn {
		ok, held := h.limit.allow(h.name+"\x00"+msg, time.Now())
		if !ok {
			return
		}
		if held > 0 {
			args = append(args, "repeats_suppressed", held)
		}
	}
	h.l.Log(context.Background(), lvl, msg, args...)
}

// Trace implements hclog.Logger.
func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (h *hcLogger) Info(msg string, args ...any) { h.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (h *hcLogger) Warn(msg string, args ...any) { h.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

// enabled reports whether the handler takes records at level l.
func (h *hcLogger) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }

// IsTrace implements hclog.Logger.
func (h *hcLogger) IsTrace() bool { return h.enabled(slog.LevelDebug - 4) }

// IsDebug implements hclog.Logger.
func (h *hcLogger) IsDebug() bool { return h.enabled(slog.LevelDebug) }

// IsInfo implements hclog.Logger.
func (h *hcLogger) IsInfo() bool { return h.enabled(slog.LevelInfo) }

// IsWarn implements hclog.Logger.
func (h *hcLogger) IsWarn() bool { return h.enabled(slog.LevelWarn) }

// IsError implements hclog.Logger.
func (h *hcLogger) IsError() bool { return h.enabled(slog.LevelError) }

// ImpliedArgs implements hclog.Logger.
func (h *hcLogger) ImpliedArgs() []any { return h.implied }

// With implements hclog.Logger.
func (h *hcLogger) With(args ...any) hclog.Logger {
	c := *h
	c.l = h.l.With(args...)
	c.implied = append(append([]any(nil), h.implied...), args...)
	return &c
}

// Name implements hclog.Logger.
func (h *hcLogger) Name() string { return h.name }

// Named implements hclog.Logger.
func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

// ResetNamed implements hclog.Logger.
func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	c.l = h.base.With("component", name).With(h.implied...)
	return &c
}

// SetLevel is ignored: the slog handler decides what is logged.
// SetLevel implements hclog.Logger.
func (h *hcLogger) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger.
func (h *hcLogger) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

// StandardLogger implements hclog.Logger.
func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger.
func (h *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return stdWriter{h} }

type stdWriter struct{ h *hcLogger }

// Write logs p as one info line.
func (w stdWriter) Write(p []byte) (int, error) {
	w.h.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

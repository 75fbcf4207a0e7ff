package sfu

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/pion/logging"
)

// discardLogger returns log, or a logger that drops everything when log is nil.
func discardLogger(log *slog.Logger) *slog.Logger {
	if log != nil {
		return log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pionLoggerFactory routes pion's internal logging into slog. pion is
// chatty, so its levels are shifted down: pion errors become slog warnings,
// warnings become info, info becomes debug, and debug/trace are dropped
// below slog's debug level.
type pionLoggerFactory struct {
	log *slog.Logger
}

// NewLogger implements logging.LoggerFactory.
func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger implements logging.LeveledLogger on top of slog.
type pionLogger struct {
	log *slog.Logger
}

const pionTraceLevel = slog.LevelDebug - 4

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(msg string)                  { l.emit(pionTraceLevel, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(pionTraceLevel, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(pionTraceLevel, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(pionTraceLevel, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }

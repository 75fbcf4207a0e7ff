package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// Levels holds the Spec in force. It is safe for concurrent use: Set may
// run while every goroutine of the node logs.
type Levels struct {
	spec atomic.Pointer[Spec]
}

// NewLevels returns Levels holding spec.
func NewLevels(spec Spec) *Levels {
	l := &Levels{}
	l.Set(spec)
	return l
}

// Set replaces the spec; records logged afterwards follow it.
func (l *Levels) Set(spec Spec) {
	parts := make(map[string]slog.Level, len(spec.Parts))
	for k, v := range spec.Parts {
		parts[k] = v
	}
	spec.Parts = parts
	l.spec.Store(&spec)
}

// Spec returns the spec in force.
func (l *Levels) Spec() Spec { return *l.spec.Load() }

// enabled reports whether part logs at level.
func (l *Levels) enabled(part string, level slog.Level) bool {
	return level >= l.spec.Load().Level(part)
}

// Handler is a slog.Handler that writes a record through its inner handler
// when the record's level reaches the level of the logger's subsystem (the
// "part" attribute given to Logger.With; NodePart without one).
type Handler struct {
	inner   slog.Handler
	levels  *Levels
	part    string
	grouped bool // a WithGroup was applied: later attrs are not the part
}

// NewHandler wraps inner, which should accept every level (NewHandler
// leaves the filtering to levels).
func NewHandler(inner slog.Handler, levels *Levels) *Handler {
	return &Handler{inner: inner, levels: levels, part: NodePart}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return h.levels.enabled(h.part, level)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; a string "part" attribute outside any
// group sets the subsystem of the derived handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == PartKey && a.Value.Kind() == slog.KindString {
				c.part = a.Value.String()
			}
		}
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.grouped = true
	return &c
}

// everything is the level the inner handlers are built with: lower than
// any level a spec can name, so Handler alone decides.
const everything = slog.Level(-1 << 20)

// Formats are the output formats New accepts.
var Formats = []string{"text", "json"}

// New returns a logger writing to w in format ("text" or "json") with the
// levels of levels.
func New(w io.Writer, format string, levels *Levels) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: everything}
	var inner slog.Handler
	switch format {
	case "text":
		inner = slog.NewTextHandler(w, opts)
	case "json":
		inner = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log-format must be text or json, got %q", format)
	}
	return slog.New(NewHandler(inner, levels)), nil
}

// Package logging gives a node's structured logs a level per subsystem.
//
// Every part of a node logs through a logger carrying a "part" attribute
// (n.log.With("part", "raft")); a Handler wraps a text or JSON slog handler
// and decides per part whether a record is written. The levels come from a
// Spec such as "raft=debug,plugins=info,*=warn" (PARLEY_LOG) and can be
// swapped at run time (SIGHUP) through Levels.Set.
package logging

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// PartKey is the attribute naming the subsystem a logger belongs to.
const PartKey = "part"

// NodePart is the subsystem of records whose logger has no part: the node
// assembly and the command itself.
const NodePart = "node"

// Subsystems lists the parts a spec may name. Records of any other part
// follow the default level.
var Subsystems = []string{
	NodePart, "sfu", "room", "signal", "http", "plugins", "raft", "cluster", "webhooks", "api",
}

// ErrSpec is wrapped by every error ParseSpec returns.
var ErrSpec = errors.New("invalid log spec")

// Spec is a parsed log specification: a default level and the levels of
// the subsystems that differ from it. The zero Spec logs at info.
type Spec struct {
	// Default applies to every subsystem not in Parts.
	Default slog.Level
	// Parts maps a subsystem (see Subsystems) to its level.
	Parts map[string]slog.Level
}

// ParseSpec parses a comma-separated list of items, each either a level
// (the default: "debug", "info", "warn", "error", or slog's "info+2"
// forms), "*=LEVEL" (the same) or "PART=LEVEL" for one subsystem. def is
// the default level when the spec does not set one. Spaces around items
// are ignored; an empty spec is def alone. Unknown subsystems, bad levels
// and a subsystem named twice are errors wrapping ErrSpec.
func ParseSpec(s string, def slog.Level) (Spec, error) {
	spec := Spec{Default: def, Parts: map[string]slog.Level{}}
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		part, lv, ok := strings.Cut(item, "=")
		if !ok {
			part, lv = "*", item
		}
		part, lv = strings.TrimSpace(part), strings.TrimSpace(lv)
		level, err := ParseLevel(lv)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %q: %w", ErrSpec, item, err)
		}
		if seen[part] {
			return Spec{}, fmt.Errorf("%w: %q is set twice", ErrSpec, part)
		}
		seen[part] = true
		switch {
		case part == "*":
			spec.Default = level
		case knownPart(part):
			spec.Parts[part] = level
		default:
			return Spec{}, fmt.Errorf("%w: unknown subsystem %q (known: %s, or * for the default)", ErrSpec, part, strings.Join(Subsystems, ", "))
		}
	}
	return spec, nil
}

// ParseLevel parses a level name as slog does ("debug", "info", "warn",
// "error", optionally with an offset such as "debug-2"), case-insensitive.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return l, errors.New("empty level (want debug, info, warn or error)")
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func knownPart(p string) bool {
	for _, k := range Subsystems {
		if k == p {
			return true
		}
	}
	return false
}

// Level returns the level of subsystem part.
func (s Spec) Level(part string) slog.Level {
	if l, ok := s.Parts[part]; ok {
		return l
	}
	return s.Default
}

// String renders the spec in the form ParseSpec reads, default first and
// subsystems in name order.
func (s Spec) String() string {
	items := []string{"*=" + levelName(s.Default)}
	names := make([]string, 0, len(s.Parts))
	for p := range s.Parts {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		items = append(items, p+"="+levelName(s.Parts[p]))
	}
	return strings.Join(items, ",")
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"", "*=info"},
		{"debug", "*=debug"},
		{"raft=debug,plugins=info", "*=info,plugins=info,raft=debug"},
		{" *=warn , raft = DEBUG ", "*=warn,raft=debug"},
		{"raft=debug,error", "*=error,raft=debug"},
		{"sfu=info+2", "*=info,sfu=info+2"}, {"sfu=info+4", "*=info,sfu=warn"},
		{"node=debug,,", "*=info,node=debug"},
	}
	for _, c := range cases {
		s, err := ParseSpec(c.in, slog.LevelInfo)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", c.in, err)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("ParseSpec(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"raft=loud":            `level "loud"`,
		"rafft=debug":          `unknown subsystem "rafft"`,
		"raft=debug,raft=info": `"raft" is set twice`,
		"debug,warn":           `"*" is set twice`,
		"raft=":                "empty level",
		"=debug":               `unknown subsystem ""`,
		"verbose":              `level "verbose"`,
	} {
		_, err := ParseSpec(in, slog.LevelInfo)
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseSpec(%q) = %v, want an ErrSpec mentioning %s", in, err, msg)
		}
	}
}

// lines decodes the JSON records written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestHandlerLevelsPerPart(t *testing.T) {
	var buf bytes.Buffer
	spec, _ := ParseSpec("*=warn,raft=debug,plugins=info", slog.LevelInfo)
	levels := NewLevels(spec)
	log, err := New(&buf, "json", levels)
	if err != nil {
		t.Fatal(err)
	}
	raft, plugins, sfu := log.With("part", "raft"), log.With("part", "plugins"), log.With("part", "sfu")
	raft.Debug("r-debug")
	plugins.Debug("p-debug")
	plugins.Info("p-info")
	sfu.Info("s-info")
	sfu.Warn("s-warn")
	log.Info("n-info")
	log.Error("n-error")
	got := lines(t, &buf)
	var msgs []string
	for _, m := range got {
		msgs = append(msgs, m["msg"].(string))
	}
	if strings.Join(msgs, " ") != "r-debug p-info s-warn n-error" {
		t.Fatalf("written: %v", msgs)
	}
	if got[0]["part"] != "raft" || got[0]["level"] != "DEBUG" {
		t.Fatalf("record: %v", got[0])
	}

	// A run-time change applies to loggers made before it.
	spec, _ = ParseSpec("sfu=debug", slog.LevelError)
	levels.Set(spec)
	raft.Debug("r-debug")
	sfu.Debug("s-debug")
	log.Warn("n-warn")
	if got := lines(t, &buf); len(got) != 1 || got[0]["msg"] != "s-debug" {
		t.Fatalf("after Set: %v", got)
	}
}

func TestHandlerPartRules(t *testing.T) {
	var buf bytes.Buffer
	spec, _ := ParseSpec("*=error,room=debug", slog.LevelInfo)
	log, _ := New(&buf, "json", NewLevels(spec))
	// Further attributes keep the part; the last part attribute wins.
	log.With("part", "room").With("room", "a").Debug("kept")
	log.With("part", "sfu", "part", "room").Debug("last wins")
	// A "part" inside a group is data, not the subsystem.
	log.WithGroup("g").With("part", "room").Debug("grouped")
	log.With(slog.Int("part", 3)).Debug("not a string")
	if got := lines(t, &buf); len(got) != 2 || got[0]["msg"] != "kept" || got[1]["msg"] != "last wins" {
		t.Fatalf("written: %v", got)
	}
	if _, err := New(&buf, "xml", NewLevels(spec)); err == nil {
		t.Fatal("format xml accepted")
	}
}

func TestHandlerText(t *testing.T) {
	var buf bytes.Buffer
	log, _ := New(&buf, "text", NewLevels(Spec{Default: slog.LevelDebug}))
	log.With("part", "http").Debug("hello", "k", 1)
	if s := buf.String(); !strings.Contains(s, "level=DEBUG") || !strings.Contains(s, "part=http") || !strings.Contains(s, "k=1") {
		t.Fatalf("text record: %q", s)
	}
}

// TestLevelsConcurrent changes the spec while loggers log (run with -race).
func TestLevelsConcurrent(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	levels := NewLevels(Spec{})
	log, _ := New(lockedWriter{&mu, &buf}, "text", levels)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			l := log.With("part", Subsystems[i])
			for range 500 {
				l.Debug("x")
			}
		})
	}
	for i := range 200 {
		levels.Set(Spec{Default: slog.Level(i%3*4 - 4)})
	}
	wg.Wait()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// FuzzParseSpec checks that any spec ParseSpec accepts renders to a string
// that parses back to the same levels.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"", "debug", "raft=debug,plugins=info", "*=warn,sfu=error", "raft=debug+1", "x=y", ",,=", "info-4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s, slog.LevelInfo)
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error without ErrSpec: %v", err)
			}
			return
		}
		again, err := ParseSpec(spec.String(), slog.LevelError)
		if err != nil {
			t.Fatalf("rendered %q of %q does not parse: %v", spec.String(), s, err)
		}
		if again.String() != spec.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, spec.String(), again.String())
		}
	})
}

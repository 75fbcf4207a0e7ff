package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/core"
)

func TestAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:7070/v1/signal":       "http://127.0.0.1:7070",
		"wss://media.example.com/v1/signal":   "https://media.example.com",
		"wss://example.com/parley/v1/signal/": "https://example.com/parley",
		"https://example.com":                 "https://example.com",
	} {
		if got := apiBase(in); got != want {
			t.Errorf("apiBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api-keys.json")
	f, err := openKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"AKB", "AKA"} {
		if err := f.PutAPIKey(ctx, core.APIKey{ID: id, Name: "n", Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.PutAPIKey(ctx, core.APIKey{ID: "AKA"}); core.CodeOf(err) != core.CodeConflict {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := f.DeleteAPIKey(ctx, "AKB"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteAPIKey(ctx, "AKB"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	again, err := openKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if keys := again.APIKeys(); len(keys) != 1 || keys[0].ID != "AKA" || keys[0].Secret != "s" || keys[0].Created.IsZero() {
		t.Fatalf("reopened: %+v", keys)
	}
	if err := os.WriteFile(path, []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openKeyFile(path); err == nil {
		t.Fatal("a corrupt key file opened")
	}
	// A failed save keeps the keys as they were.
	ro := &keyFile{path: filepath.Join(t.TempDir(), "missing-dir", "k.json"), keys: map[string]core.APIKey{}}
	if err := ro.PutAPIKey(ctx, core.APIKey{ID: "AKX"}); err == nil || len(ro.APIKeys()) != 0 {
		t.Fatalf("failed save: %v, %d keys", err, len(ro.APIKeys()))
	}
}

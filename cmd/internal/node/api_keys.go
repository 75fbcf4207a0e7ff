package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
)

// apiKeysFile is where a single node keeps its server API keys.
func apiKeysFile(p Paths) string { return filepath.Join(p.DataDir, "api-keys.json") }

// keyFile is a single node's API key store: a JSON file in the data dir,
// mode 0600, replaced atomically (written to a temporary file, synced,
// renamed) on every change. Safe for concurrent use.
type keyFile struct {
	path string
	mu   sync.Mutex
	keys map[string]core.APIKey
}

// openKeyFile loads path, which may not exist yet.
func openKeyFile(path string) (*keyFile, error) {
	f := &keyFile{path: path, keys: map[string]core.APIKey{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: API keys: %w", err)
	}
	var list []core.APIKey
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("node: API keys file %s is corrupt (fix or remove it): %w", path, err)
	}
	for _, k := range list {
		f.keys[k.ID] = k
	}
	return f, nil
}

// APIKeys implements api.Keys, ordered by id.
func (f *keyFile) APIKeys() []core.APIKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedLocked()
}

func (f *keyFile) sortedLocked() []core.APIKey {
	out := make([]core.APIKey, 0, len(f.keys))
	for _, k := range f.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// APIKey implements api.Keys.
func (f *keyFile) APIKey(id string) (core.APIKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	return k, ok
}

// PutAPIKey implements api.Keys; an existing id is a conflict.
func (f *keyFile) PutAPIKey(_ context.Context, k core.APIKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[k.ID]; ok {
		return core.Errorf(core.CodeConflict, "API key %s exists", k.ID)
	}
	if k.Created.IsZero() {
		k.Created = time.Now().UTC()
	}
	f.keys[k.ID] = k
	if err := f.saveLocked(); err != nil {
		delete(f.keys, k.ID)
		return err
	}
	return nil
}

// DeleteAPIKey implements api.Keys; an unknown id is not_found.
func (f *keyFile) DeleteAPIKey(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return core.Errorf(core.CodeNotFound, "no API key %q", id)
	}
	delete(f.keys, id)
	if err := f.saveLocked(); err != nil {
		f.keys[id] = k
		return err
	}
	return nil
}

// saveLocked replaces the file with the current keys.
func (f *keyFile) saveLocked() error {
	b, err := json.MarshalIndent(f.sortedLocked(), "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(f.path, append(b, '\n'), 0o600); err != nil {
		return core.Errorf(core.CodeUnavailable, "save API keys: %w", err)
	}
	return nil
}

// clusterKeys implements api.Keys over the cluster state.
type clusterKeys struct{ c *clusterRef }

// APIKeys implements api.Keys.
func (k clusterKeys) APIKeys() []core.APIKey {
	if s := k.c.s.Load(); s != nil {
		return s.APIKeys()
	}
	return nil
}

// APIKey implements api.Keys.
func (k clusterKeys) APIKey(id string) (core.APIKey, bool) {
	if s := k.c.s.Load(); s != nil {
		return s.APIKey(id)
	}
	return core.APIKey{}, false
}

// PutAPIKey implements api.Keys.
func (k clusterKeys) PutAPIKey(ctx context.Context, key core.APIKey) error {
	s, err := k.c.store()
	if err != nil {
		return err
	}
	return s.PutAPIKey(ctx, key)
}

// DeleteAPIKey implements api.Keys.
func (k clusterKeys) DeleteAPIKey(ctx context.Context, id string) error {
	s, err := k.c.store()
	if err != nil {
		return err
	}
	return s.DeleteAPIKey(ctx, id)
}

// clusterIdempotency implements api.Idempotency over the cluster state, so
// that a retry on any node replays the first response.
type clusterIdempotency struct{ c *clusterRef }

// ReserveIdempotency implements api.Idempotency.
func (i clusterIdempotency) ReserveIdempotency(ctx context.Context, rec core.IdempotencyRecord, ttl time.Duration) (core.IdempotencyRecord, bool, error) {
	s, err := i.c.store()
	if err != nil {
		return core.IdempotencyRecord{}, false, err
	}
	return s.ReserveIdempotency(ctx, rec, ttl)
}

// CompleteIdempotency implements api.Idempotency.
func (i clusterIdempotency) CompleteIdempotency(ctx context.Context, rec core.IdempotencyRecord) error {
	s, err := i.c.store()
	if err != nil {
		return err
	}
	return s.CompleteIdempotency(ctx, rec)
}

// ForgetIdempotency implements api.Idempotency.
func (i clusterIdempotency) ForgetIdempotency(ctx context.Context, key string) error {
	s, err := i.c.store()
	if err != nil {
		return err
	}
	return s.ForgetIdempotency(ctx, key)
}

// Idempotency implements api.Idempotency.
func (i clusterIdempotency) Idempotency(key string) (core.IdempotencyRecord, bool) {
	if s := i.c.s.Load(); s != nil {
		return s.Idempotency(key)
	}
	return core.IdempotencyRecord{}, false
}

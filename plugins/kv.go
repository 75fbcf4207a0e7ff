package plugins

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/parleyhq/parley/abi"
)

// KVStore backs the kv capability: one namespace per plugin name, shared
// by all its instances and kept across Replace. Implementations must be
// safe for concurrent use; a replicated store can replace the default
// in-memory one.
type KVStore interface {
	Get(ctx context.Context, plugin, key string) (value []byte, ok bool, err error)
	Set(ctx context.Context, plugin, key string, value []byte) error
	Delete(ctx context.Context, plugin, key string) error
	// Add adds delta to the little-endian int64 under key (missing is 0)
	// and returns the sum.
	Add(ctx context.Context, plugin, key string, delta int64) (int64, error)
}

// MemoryKV is an in-process KVStore enforcing the ABI's kv limits. Its
// contents are lost on restart.
type MemoryKV struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
}

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{data: map[string]map[string][]byte{}} }

// Get implements KVStore.
func (s *MemoryKV) Get(_ context.Context, plugin, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[plugin][key]
	return v, ok, nil
}

// Set implements KVStore.
func (s *MemoryKV) Set(_ context.Context, plugin, key string, value []byte) error {
	if len(key) == 0 || len(key) > abi.MaxKVKey || len(value) > abi.MaxKVValue {
		return ErrKVTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(plugin, key, append([]byte(nil), value...))
}

// put stores under the lock, enforcing the key quota.
func (s *MemoryKV) put(plugin, key string, value []byte) error {
	ns := s.data[plugin]
	if ns == nil {
		ns = map[string][]byte{}
		s.data[plugin] = ns
	}
	if _, ok := ns[key]; !ok && len(ns) >= abi.MaxKVKeys {
		return ErrKVQuota
	}
	ns[key] = value
	return nil
}

// Delete implements KVStore.
func (s *MemoryKV) Delete(_ context.Context, plugin, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data[plugin], key)
	return nil
}

// Add implements KVStore.
func (s *MemoryKV) Add(_ context.Context, plugin, key string, delta int64) (int64, error) {
	if len(key) == 0 || len(key) > abi.MaxKVKey {
		return 0, ErrKVTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v int64
	if b, ok := s.data[plugin][key]; ok {
		if len(b) != 8 {
			return 0, ErrKVNotCounter
		}
		v = int64(binary.LittleEndian.Uint64(b))
	}
	v += delta
	return v, s.put(plugin, key, binary.LittleEndian.AppendUint64(nil, uint64(v)))
}

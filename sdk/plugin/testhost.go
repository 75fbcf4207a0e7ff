//go:build !wasip1

package plugin

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/parleyhq/parley/abi"
)

// TestHost stands in for the Parley host when plugin code runs under plain
// go test (any GOOS but wasip1). It records what the plugin logs and sends
// and serves its config, key-value store, clock and randomness.
type TestHost struct {
	mu       sync.Mutex
	config   []byte
	now      func() time.Time
	random   io.Reader
	kv       map[string][]byte
	logs     []LogLine
	webhooks []abi.WebhookRequest
}

// LogLine is one line a plugin logged through a TestHost.
type LogLine struct {
	Level   int32
	Message string
}

// NewTestHost returns a TestHost serving config (JSON, may be nil), the
// system clock and crypto/rand.
func NewTestHost(config []byte) *TestHost {
	return &TestHost{config: config, now: time.Now, random: rand.Reader, kv: map[string][]byte{}}
}

// SetClock makes Now return now() from here on.
func (h *TestHost) SetClock(now func() time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = now
}

// Logs returns the lines logged so far.
func (h *TestHost) Logs() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogLine(nil), h.logs...)
}

// Webhooks returns the webhook requests sent so far.
func (h *TestHost) Webhooks() []abi.WebhookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]abi.WebhookRequest(nil), h.webhooks...)
}

var (
	testHostMu sync.Mutex
	testHost   = NewTestHost(nil)
)

// SetTestHost makes h serve the capability helpers and returns a function
// restoring the previous host. Tests using it must not run in parallel.
func SetTestHost(h *TestHost) (restore func()) {
	testHostMu.Lock()
	defer testHostMu.Unlock()
	prev := testHost
	testHost = h
	return func() {
		testHostMu.Lock()
		defer testHostMu.Unlock()
		testHost = prev
	}
}

func current() *TestHost {
	testHostMu.Lock()
	defer testHostMu.Unlock()
	return testHost
}

func hostLog(level int32, msg string) int32 {
	if level < abi.LevelDebug || level > abi.LevelError {
		return abi.StatusInvalid
	}
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, LogLine{Level: level, Message: msg})
	return abi.StatusOK
}

func hostConfig() ([]byte, int32) {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.config...), abi.StatusOK
}

func hostKVGet(key string, buf []byte) int32 {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[key]
	if !ok {
		return abi.StatusNotFound
	}
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return int32(len(v))
}

func hostKVSet(key string, val []byte) int32 {
	if len(key) == 0 || len(key) > abi.MaxKVKey || len(val) > abi.MaxKVValue {
		return abi.StatusTooLarge
	}
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kv[key] = append([]byte(nil), val...)
	return abi.StatusOK
}

func hostKVDelete(key string) int32 {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.kv, key)
	return abi.StatusOK
}

func hostKVAdd(key string, delta int64, out *int64) int32 {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	var v int64
	if b, ok := h.kv[key]; ok {
		if len(b) != 8 {
			return abi.StatusInvalid
		}
		v = int64(binary.LittleEndian.Uint64(b))
	}
	v += delta
	h.kv[key] = binary.LittleEndian.AppendUint64(nil, uint64(v))
	*out = v
	return abi.StatusOK
}

func hostWebhook(payload []byte) int32 {
	var req abi.WebhookRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return abi.StatusInvalid
	}
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.webhooks = append(h.webhooks, req)
	return abi.StatusOK
}

func hostNow() int64 {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now().UnixNano()
}

func hostMonotonic() int64 { return hostNow() }

func hostRandom(b []byte) int32 {
	h := current()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := io.ReadFull(h.random, b); err != nil {
		return abi.StatusUnavailable
	}
	return abi.StatusOK
}

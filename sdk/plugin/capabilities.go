package plugin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleyhq/parley/abi"
)

// StatusError reports a host function that returned a failure status.
type StatusError struct {
	Func   string // the host function, e.g. "kv_set"
	Status int32  // one of the abi.Status* codes
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("plugin: %s: %s", e.Func, abi.StatusText(e.Status))
}

func statusErr(fn string, st int32) error {
	if st >= 0 {
		return nil
	}
	return &StatusError{Func: fn, Status: st}
}

// Log writes one line to the host's log at the given abi.Level*. Lines
// over the plugin's rate are dropped. Needs the log capability.
func Log(level int32, msg string) {
	if len(msg) > abi.MaxLogLine {
		msg = msg[:abi.MaxLogLine]
	}
	hostLog(level, msg)
}

// Logf formats and logs a line. Needs the log capability.
func Logf(level int32, format string, args ...any) { Log(level, fmt.Sprintf(format, args...)) }

// ConfigBytes returns the plugin's configuration as the operator wrote it
// (JSON; empty when none). Needs the config capability.
func ConfigBytes() ([]byte, error) {
	b, st := hostConfig()
	return b, statusErr(abi.FuncConfigRead, st)
}

// DecodeConfig decodes the plugin's JSON configuration into v, leaving v
// untouched when there is none. Needs the config capability.
func DecodeConfig(v any) error {
	b, err := ConfigBytes()
	if err != nil {
		return err
	}
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("plugin: decode config: %w", err)
	}
	return nil
}

// KVGet returns the value stored under key in the plugin's key-value
// store; ok is false when there is none. Needs the kv capability.
func KVGet(key string) (value []byte, ok bool, err error) {
	buf := make([]byte, 256)
	for {
		n := hostKVGet(key, buf)
		switch {
		case n == abi.StatusNotFound:
			return nil, false, nil
		case n < 0:
			return nil, false, statusErr(abi.FuncKVGet, n)
		case int(n) <= len(buf):
			return buf[:n], true, nil
		}
		buf = make([]byte, n) // the value is larger than buf: retry once sized
	}
}

// KVSet stores value under key. Needs the kv capability.
func KVSet(key string, value []byte) error {
	return statusErr(abi.FuncKVSet, hostKVSet(key, value))
}

// KVDelete removes key; removing a missing key is not an error. Needs the
// kv capability.
func KVDelete(key string) error {
	return statusErr(abi.FuncKVDelete, hostKVDelete(key))
}

// KVAdd atomically adds delta to the 8-byte counter under key (missing
// counts as 0) and returns the new value. Needs the kv capability.
func KVAdd(key string, delta int64) (int64, error) {
	var v int64
	st := hostKVAdd(key, delta, &v)
	return v, statusErr(abi.FuncKVAdd, st)
}

// SendWebhook asks the host to deliver req. The host queues it once the
// hook call returns successfully; a failed call sends nothing. Needs the
// webhook capability.
func SendWebhook(req abi.WebhookRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("plugin: encode webhook: %w", err)
	}
	return statusErr(abi.FuncWebhookSend, hostWebhook(b))
}

// Now returns the host's wall-clock time. Needs the clock capability.
func Now() time.Time { return time.Unix(0, hostNow()) }

// Monotonic returns a monotonic clock reading; only differences between
// readings are meaningful. Needs the clock capability.
func Monotonic() time.Duration { return time.Duration(hostMonotonic()) }

// RandomRead fills b with cryptographically secure random bytes. Needs the
// random capability.
func RandomRead(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), abi.MaxRandomFill)
		if st := hostRandom(b[:n]); st < 0 {
			return statusErr(abi.FuncRandomFill, st)
		}
		b = b[n:]
	}
	return nil
}

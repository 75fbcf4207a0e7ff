package abi

import (
	"fmt"
	"strconv"
	"strings"
)

// ABI version. Minor versions only add: new host functions, new optional
// hooks, new optional JSON fields. A plugin that imports a function from a
// newer minor fails to load on an older host with an error naming it.
const (
	Major   = 1
	Minor   = 0
	Version = "1.0"
)

// Host module names. Every name carries the major version; a plugin built
// for another major imports modules this host does not have.
const (
	// ModuleCore holds the functions every plugin may import: input,
	// output and error.
	ModuleCore = "parley_v1"
	// ModuleLog is the log capability.
	ModuleLog = "parley_log_v1"
	// ModuleConfig is the config capability.
	ModuleConfig = "parley_config_v1"
	// ModuleKV is the key-value store capability.
	ModuleKV = "parley_kv_v1"
	// ModuleWebhook is the webhook capability.
	ModuleWebhook = "parley_webhook_v1"
	// ModuleClock is the clock capability.
	ModuleClock = "parley_clock_v1"
	// ModuleRandom is the randomness capability.
	ModuleRandom = "parley_random_v1"
	// ModuleWASI is WASI preview 1, provided for toolchains whose runtime
	// needs it (Go, Rust wasm32-wasip1, ...). It has no files, no sockets,
	// no arguments and no environment; see docs/abi.md.
	ModuleWASI = "wasi_snapshot_preview1"
)

// Functions of ModuleCore.
const (
	FuncInputLen  = "input_len"  // () -> i32
	FuncInputRead = "input_read" // (ptr i32, len i32) -> i32
	FuncOutputSet = "output_set" // (ptr i32, len i32) -> i32
	FuncErrorSet  = "error_set"  // (ptr i32, len i32) -> i32
)

// Functions of the capability modules.
const (
	FuncLog         = "log"            // ModuleLog: (level i32, ptr i32, len i32) -> i32
	FuncConfigLen   = "config_len"     // ModuleConfig: () -> i32
	FuncConfigRead  = "config_read"    // ModuleConfig: (ptr i32, len i32) -> i32
	FuncKVGet       = "kv_get"         // ModuleKV: (key_ptr, key_len, val_ptr, val_cap i32) -> i32
	FuncKVSet       = "kv_set"         // ModuleKV: (key_ptr, key_len, val_ptr, val_len i32) -> i32
	FuncKVDelete    = "kv_delete"      // ModuleKV: (key_ptr, key_len i32) -> i32
	FuncKVAdd       = "kv_add"         // ModuleKV: (key_ptr, key_len i32, delta i64, out_ptr i32) -> i32
	FuncWebhookSend = "webhook_send"   // ModuleWebhook: (ptr i32, len i32) -> i32
	FuncNowUnixNano = "now_unix_nano"  // ModuleClock: () -> i64
	FuncMonotonic   = "monotonic_nano" // ModuleClock: () -> i64
	FuncRandomFill  = "random_fill"    // ModuleRandom: (ptr i32, len i32) -> i32
)

// Exports other than hooks.
const (
	// ExportMemory is the linear memory every plugin must export.
	ExportMemory = "memory"
	// ExportInitialize is the WASI reactor initializer. When a plugin
	// exports it, the host calls it once per instance before anything else.
	ExportInitialize = "_initialize"
	// ExportStart marks a WASI command module, which Parley refuses: a
	// plugin is a reactor (Go: -buildmode=c-shared).
	ExportStart = "_start"
)

// Status codes returned by host functions (i32). Zero or a positive value
// (a length) means success.
const (
	StatusOK          int32 = 0
	StatusBounds      int32 = -1 // a pointer/length pair lies outside guest memory
	StatusTooLarge    int32 = -2 // the data exceeds a limit
	StatusNotFound    int32 = -3 // no such key
	StatusInvalid     int32 = -4 // a malformed argument (bad level, not JSON, bad URL ...)
	StatusRateLimited int32 = -5 // over the plugin's rate (log lines)
	StatusUnavailable int32 = -6 // not inside a hook call, or the service is down
	StatusQuota       int32 = -7 // a per-plugin quota is used up (kv keys, webhooks per call)
)

// Hook return values. A hook returns HookOK after setting its output, or
// any other value to report failure (with an optional message set through
// error_set).
const (
	HookOK     int32 = 0
	HookFailed int32 = 1
)

// Log levels for ModuleLog.log.
const (
	LevelDebug int32 = 0
	LevelInfo  int32 = 1
	LevelWarn  int32 = 2
	LevelError int32 = 3
)

// StatusText returns a short description of a host function status.
func StatusText(s int32) string {
	switch {
	case s >= 0:
		return "ok"
	case s == StatusBounds:
		return "out of bounds"
	case s == StatusTooLarge:
		return "too large"
	case s == StatusNotFound:
		return "not found"
	case s == StatusInvalid:
		return "invalid argument"
	case s == StatusRateLimited:
		return "rate limited"
	case s == StatusUnavailable:
		return "unavailable"
	case s == StatusQuota:
		return "quota exceeded"
	}
	return "status " + strconv.Itoa(int(s))
}

// Capability names a host module an operator may grant to a plugin.
type Capability string

// Capabilities. ModuleCore and ModuleWASI need no grant.
const (
	CapLog     Capability = "log"
	CapConfig  Capability = "config"
	CapKV      Capability = "kv"
	CapWebhook Capability = "webhook"
	CapClock   Capability = "clock"
	CapRandom  Capability = "random"
)

// Capabilities lists every capability in a stable order.
var Capabilities = []Capability{CapLog, CapConfig, CapKV, CapWebhook, CapClock, CapRandom}

// Module returns the host module name of the capability.
func (c Capability) Module() string { return ModuleName(string(c), Major) }

// Valid reports whether c is a known capability.
func (c Capability) Valid() bool {
	for _, k := range Capabilities {
		if k == c {
			return true
		}
	}
	return false
}

// ModuleName returns the host module name for a capability (or "" for the
// core module) at the given ABI major: "parley_v1", "parley_kv_v1".
func ModuleName(capability string, major int) string {
	if capability == "" {
		return fmt.Sprintf("parley_v%d", major)
	}
	return fmt.Sprintf("parley_%s_v%d", capability, major)
}

// ParseModuleName splits a Parley host module name into its capability (""
// for the core module) and major version. ok is false for names that are
// not of the form parley_v<N> or parley_<capability>_v<N>.
func ParseModuleName(name string) (capability string, major int, ok bool) {
	rest, found := strings.CutPrefix(name, "parley_")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndex(rest, "v")
	if i < 0 || i+1 >= len(rest) {
		return "", 0, false
	}
	digits := rest[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	major, err := strconv.Atoi(digits)
	if err != nil || len(digits) > 1 && digits[0] == '0' {
		return "", 0, false
	}
	head := rest[:i]
	switch {
	case head == "":
		return "", major, true
	case strings.HasSuffix(head, "_") && len(head) > 1:
		return head[:len(head)-1], major, true
	}
	return "", 0, false
}

package plugins

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test with errors.Is.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("plugins: manager closed")
	// ErrNotFound is returned for a plugin name that is not loaded.
	ErrNotFound = errors.New("plugins: plugin not loaded")
	// ErrExists is returned by Load for a name that is already loaded.
	ErrExists = errors.New("plugins: plugin already loaded")
	// ErrInvalidConfig is returned for a Config, Spec or Limits that fails
	// validation.
	ErrInvalidConfig = errors.New("plugins: invalid configuration")
	// ErrChecksum is returned when a module's bytes do not match the
	// sha256 its Spec names.
	ErrChecksum = errors.New("plugins: module checksum mismatch")
	// ErrCompile is returned when a module is not valid WebAssembly.
	ErrCompile = errors.New("plugins: module does not compile")
	// ErrABIMismatch is returned for a plugin built for another ABI major,
	// or one that is not a Parley plugin at all.
	ErrABIMismatch = errors.New("plugins: plugin ABI mismatch")
	// ErrCapabilityNotGranted is returned for a plugin importing a
	// capability module the operator did not grant it.
	ErrCapabilityNotGranted = errors.New("plugins: capability not granted")
	// ErrUnknownImport is returned for an import the host does not provide.
	ErrUnknownImport = errors.New("plugins: unknown import")
	// ErrBadExport is returned for a missing memory export or a hook with
	// the wrong signature.
	ErrBadExport = errors.New("plugins: bad export")
	// ErrInit is returned when instantiating a plugin or its init hook
	// fails.
	ErrInit = errors.New("plugins: plugin init failed")
	// ErrAllSkipped is wrapped by Authenticate when every auth plugin
	// skipped the token (none claimed it), so the caller may fall back to
	// another verifier.
	ErrAllSkipped = errors.New("plugins: every auth plugin skipped the token")
	// ErrHookNotServed is returned when calling a hook a plugin does not
	// serve.
	ErrHookNotServed = errors.New("plugins: hook not served")
	// ErrInputTooLarge is returned when a hook's input exceeds the limit.
	ErrInputTooLarge = errors.New("plugins: input too large")
	// ErrTimeout is returned when a call exceeds its deadline; the
	// instance is discarded.
	ErrTimeout = errors.New("plugins: call timed out")
	// ErrOutOfMemory is returned when a call fails with the instance's
	// memory at its cap; the instance is discarded.
	ErrOutOfMemory = errors.New("plugins: out of memory")
	// ErrTrap is returned when a call traps or exits; the instance is
	// discarded.
	ErrTrap = errors.New("plugins: plugin trapped")
	// ErrCanceled is returned when the caller's context ends a call.
	ErrCanceled = errors.New("plugins: call canceled")
	// ErrPluginFailed is returned when a hook reports failure itself.
	ErrPluginFailed = errors.New("plugins: plugin reported failure")
	// ErrBadOutput is returned for output that is missing, malformed,
	// invalid or over the size limit.
	ErrBadOutput = errors.New("plugins: bad plugin output")
	// ErrBackedOff is returned without running a plugin that keeps
	// failing, until its back-off ends.
	ErrBackedOff = errors.New("plugins: plugin backed off after repeated failures")
)

// KV errors, mapped to ABI status codes by the kv capability.
var (
	// ErrKVQuota: the plugin has abi.MaxKVKeys keys already.
	ErrKVQuota = errors.New("plugins: kv quota exceeded")
	// ErrKVTooLarge: a key or value over abi.MaxKVKey / abi.MaxKVValue.
	ErrKVTooLarge = errors.New("plugins: kv key or value too large")
	// ErrKVNotCounter: Add on a value that is not an 8-byte counter.
	ErrKVNotCounter = errors.New("plugins: kv value is not a counter")
)

// ErrSinkFull is returned by DirectSink.Enqueue when its queue is full,
// and ErrSinkClosed once it is closed.
var (
	ErrSinkFull   = errors.New("plugins: webhook queue full")
	ErrSinkClosed = errors.New("plugins: webhook sink closed")
)

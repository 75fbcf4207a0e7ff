//go:build wasip1

package plugin

import (
	"unsafe"

	"github.com/parleyhq/parley/abi"
)

// The host imports. The Go linker keeps an import only when a function
// reachable from the plugin calls it, so a plugin imports the capability
// modules of the helpers it uses and nothing more.

//go:wasmimport parley_v1 input_len
func importInputLen() int32

//go:wasmimport parley_v1 input_read
func importInputRead(ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_v1 output_set
func importOutputSet(ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_v1 error_set
func importErrorSet(ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_log_v1 log
func importLog(level int32, ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_config_v1 config_len
func importConfigLen() int32

//go:wasmimport parley_config_v1 config_read
func importConfigRead(ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_kv_v1 kv_get
func importKVGet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vcap int32) int32

//go:wasmimport parley_kv_v1 kv_set
func importKVSet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vlen int32) int32

//go:wasmimport parley_kv_v1 kv_delete
func importKVDelete(kptr unsafe.Pointer, klen int32) int32

//go:wasmimport parley_kv_v1 kv_add
func importKVAdd(kptr unsafe.Pointer, klen int32, delta int64, out unsafe.Pointer) int32

//go:wasmimport parley_webhook_v1 webhook_send
func importWebhookSend(ptr unsafe.Pointer, n int32) int32

//go:wasmimport parley_clock_v1 now_unix_nano
func importNowUnixNano() int64

//go:wasmimport parley_clock_v1 monotonic_nano
func importMonotonicNano() int64

//go:wasmimport parley_random_v1 random_fill
func importRandomFill(ptr unsafe.Pointer, n int32) int32

// The hook exports.

//go:wasmexport parley_init
func exportInit() int32 { return run(abi.HookInit) }

//go:wasmexport parley_auth
func exportAuth() int32 { return run(abi.HookAuth) }

//go:wasmexport parley_join
func exportJoin() int32 { return run(abi.HookJoin) }

//go:wasmexport parley_publish
func exportPublish() int32 { return run(abi.HookPublish) }

//go:wasmexport parley_subscribe
func exportSubscribe() int32 { return run(abi.HookSubscribe) }

//go:wasmexport parley_presence
func exportPresence() int32 { return run(abi.HookPresence) }

// run is the body of every hook export: pull input, dispatch, push output.
func run(h abi.Hook) int32 {
	n := importInputLen()
	if n < 0 {
		return abi.HookFailed
	}
	in := make([]byte, n, int(n)+padding) // fresh, zero-padded: decoded strings alias it
	if got := importInputRead(bytesPtr(in), n); got != n {
		setError("plugin: input_read: " + abi.StatusText(got))
		return abi.HookFailed
	}
	out, err := Dispatch(h, in)
	if err != nil {
		setError(err.Error())
		return abi.HookFailed
	}
	if out == nil {
		return abi.HookOK
	}
	if st := importOutputSet(bytesPtr(out), int32(len(out))); st < 0 {
		setError("plugin: output_set: " + abi.StatusText(st))
		return abi.HookFailed
	}
	return abi.HookOK
}

func setError(msg string) {
	if len(msg) > abi.MaxErrorMessage {
		msg = msg[:abi.MaxErrorMessage]
	}
	importErrorSet(stringPtr(msg), int32(len(msg)))
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func stringPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func hostLog(level int32, msg string) int32 {
	return importLog(level, stringPtr(msg), int32(len(msg)))
}

func hostConfig() ([]byte, int32) {
	n := importConfigLen()
	if n <= 0 {
		return nil, n
	}
	b := make([]byte, n)
	if got := importConfigRead(bytesPtr(b), n); got != n {
		if got < 0 {
			return nil, got
		}
		return nil, abi.StatusInvalid
	}
	return b, 0
}

func hostKVGet(key string, buf []byte) int32 {
	return importKVGet(stringPtr(key), int32(len(key)), bytesPtr(buf), int32(len(buf)))
}

func hostKVSet(key string, val []byte) int32 {
	return importKVSet(stringPtr(key), int32(len(key)), bytesPtr(val), int32(len(val)))
}

func hostKVDelete(key string) int32 { return importKVDelete(stringPtr(key), int32(len(key))) }

func hostKVAdd(key string, delta int64, out *int64) int32 {
	return importKVAdd(stringPtr(key), int32(len(key)), delta, unsafe.Pointer(out))
}

func hostWebhook(payload []byte) int32 {
	return importWebhookSend(bytesPtr(payload), int32(len(payload)))
}

func hostNow() int64       { return importNowUnixNano() }
func hostMonotonic() int64 { return importMonotonicNano() }

func hostRandom(b []byte) int32 { return importRandomFill(bytesPtr(b), int32(len(b))) }

// Package abi defines version 1 of the Parley plugin ABI: the names of the
// host modules a plugin imports and of the hooks it exports, the status codes
// that cross the boundary, the limits the host enforces, and the JSON
// payloads exchanged on every call.
//
// The package imports only the standard library and builds for
// GOOS=wasip1 GOARCH=wasm, so the host (package plugins), the Go SDK
// (package sdk/plugin) and plugins themselves share one definition.
// docs/abi.md describes the same contract for authors in other languages.
//
// # Calling convention in brief
//
// A plugin is a core WebAssembly module exporting "memory" and any of the
// hook functions (HookJoin.Export() and so on), each of type () -> i32. When
// the host runs a hook it makes the request available as input; the guest
// pulls it with input_len and input_read into a buffer it allocated itself,
// and hands back its answer with output_set (or a failure message with
// error_set). The host never allocates inside the guest. The major version
// of the ABI is part of every host module name ("parley_v1",
// "parley_log_v1", ...), so a plugin built for another major fails to load.
package abi

// Package plugin is the Go SDK for writing Parley plugins.
//
// A plugin is a small main package that registers typed handlers in an
// init function and is built as a WASI reactor:
//
//	package main
//
//	import (
//		"github.com/parleyhq/parley/abi"
//		"github.com/parleyhq/parley/sdk/plugin"
//	)
//
//	func init() {
//		plugin.OnJoin(func(req abi.JoinRequest) abi.Decision {
//			if req.Room == "closed" {
//				return abi.Deny(abi.CodeForbidden, "room is closed")
//			}
//			return abi.Allow()
//		})
//	}
//
//	func main() {} // never called in a reactor
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o myplugin.wasm .
//
// Handlers must be registered from init functions: in a reactor main is
// not run. The SDK exports every hook function, reads the input through
// the host, decodes it, calls the handler and hands the encoded result
// back; the init hook tells the host which hooks have handlers, so
// unregistered hooks are never called.
//
// Capability helpers (Log, DecodeConfig, KVGet, SendWebhook, Now,
// RandomRead ...) import their host module only when the plugin uses them,
// so a plugin needs exactly the capabilities of the helpers it calls.
//
// Outside wasip1 (plain go test) the same functions run against an
// in-process TestHost, so plugin logic is testable without WebAssembly: see
// SetTestHost, Dispatch and Invoke.
package plugin

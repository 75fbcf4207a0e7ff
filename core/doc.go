// Package core holds what every part of Parley agrees on: identifiers, typed
// errors, the events the control plane emits, and the small interfaces the
// core needs from the outside (authentication, policy, presence).
//
// The package imports only the standard library. Implementations of its
// interfaces live elsewhere: the development token verifier in
// core/devtoken, WASM plugins in plugins/, cluster state in raftstore/.
package core

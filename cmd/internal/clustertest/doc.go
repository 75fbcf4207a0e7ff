// Package clustertest holds the multi-process cluster tests: three real
// parley binaries, built by the test, on loopback, whose processes are
// killed (SIGKILL), frozen (SIGSTOP) and restarted while clients use them.
// It has no code of its own; the in-process cluster tests are in
// cmd/internal/node. `go test -short` skips them.
package clustertest

package raftstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/core"
)

// Sentinel errors. Errors returned by exported Store methods wrap one of
// these (test with errors.Is) inside a *core.Error that carries the code a
// client would see (test with core.CodeOf).
var (
	// ErrInvalidConfig means Config.Validate rejected the configuration.
	ErrInvalidConfig = errors.New("raftstore: invalid configuration")
	// ErrDataDirLocked means another Store (in this or another process)
	// has the data directory open.
	ErrDataDirLocked = errors.New("raftstore: data directory is in use")
	// ErrShutdown means the Store is shut down or shutting down.
	ErrShutdown = errors.New("raftstore: shut down")
	// ErrNotLeader means the node that received a request is not the
	// leader. Store methods retry it internally; callers see ErrNoLeader.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrNoLeader means no leader could be reached within the apply bound
	// (Config.ApplyTimeout) and the write was certainly not committed.
	ErrNoLeader = errors.New("raftstore: no reachable leader")
	// ErrLeadershipLost means the outcome of a write is unknown: it was
	// handed to a leader that lost its leadership (or the connection to it)
	// before answering, and the retries within the apply bound did not
	// settle it. Repeating the same command (same request id) is safe: the
	// state machine applies a request id at most once.
	ErrLeadershipLost = errors.New("raftstore: leadership lost, outcome unknown")
	// ErrStalled means the watchdog found this node's log writes stalled
	// while it was leader and fenced the node off the cluster; the process
	// should exit and be restarted.
	ErrStalled = errors.New("raftstore: log writes stalled, node fenced")
	// ErrDraining means the local node is draining and takes no new rooms.
	ErrDraining = errors.New("raftstore: node is draining")
	// ErrNotOwner means a release named a room another node owns, or an
	// older claim than the one in force.
	ErrNotOwner = errors.New("raftstore: room is not owned by this claim")
	// ErrUnknownNode means a command named a node the cluster does not know.
	ErrUnknownNode = errors.New("raftstore: unknown node")
	// ErrModuleMissing means a plugin names a module the cluster does not hold.
	ErrModuleMissing = errors.New("raftstore: plugin module not uploaded")
	// ErrChecksum means module bytes do not match their sha256.
	ErrChecksum = errors.New("raftstore: module checksum mismatch")
	// ErrBadCommand means a command could not be decoded or is invalid.
	ErrBadCommand = errors.New("raftstore: bad command")
	// ErrTooLarge means a command or RPC frame exceeds its size limit.
	ErrTooLarge = errors.New("raftstore: too large")
	// ErrConflict means a compare-and-set command found the state changed:
	// a webhook cursor that moved on, an API key id that exists already.
	ErrConflict = errors.New("raftstore: conflict")
	// ErrNotFound means a command names a record that does not exist (an
	// API key, an idempotency record).
	ErrNotFound = errors.New("raftstore: not found")
	// ErrUpgradePending means a registered node runs an older parley that
	// does not know the command's kind: proposing it would make that
	// replica fail the command and drift. Upgrade every node first.
	ErrUpgradePending = errors.New("raftstore: a node runs an older parley that does not know this command")
	// ErrUnauthorized means a peer failed mutual TLS: it does not hold the
	// cluster secret or a certificate from the cluster CA.
	ErrUnauthorized = errors.New("raftstore: peer not authorized")
)

// wireNames gives each sentinel a stable name for results recorded in the
// replicated state and for errors sent over the forwarding RPC. Names never
// change meaning: they are part of the log format.
var wireNames = map[error]string{
	ErrShutdown:       "shutdown",
	ErrNotLeader:      "not_leader",
	ErrNoLeader:       "no_leader",
	ErrLeadershipLost: "leadership_lost",
	ErrStalled:        "stalled",
	ErrDraining:       "draining",
	ErrNotOwner:       "not_owner",
	ErrUnknownNode:    "unknown_node",
	ErrModuleMissing:  "module_missing",
	ErrChecksum:       "checksum",
	ErrBadCommand:     "bad_command",
	ErrTooLarge:       "too_large",
	ErrUnauthorized:   "unauthorized",
	ErrInvalidConfig:  "invalid_config",
	ErrConflict:       "conflict",
	ErrNotFound:       "not_found",
	ErrUpgradePending: "upgrade_pending",
}

var wireErrors = func() map[string]error {
	m := make(map[string]error, len(wireNames))
	for err, name := range wireNames {
		m[name] = err
	}
	return m
}()

// codes maps sentinels to the code clients see.
var codes = map[error]core.Code{
	ErrInvalidConfig:  core.CodeBadRequest,
	ErrShutdown:       core.CodeUnavailable,
	ErrNotLeader:      core.CodeUnavailable,
	ErrNoLeader:       core.CodeUnavailable,
	ErrLeadershipLost: core.CodeUnavailable,
	ErrStalled:        core.CodeUnavailable,
	ErrDraining:       core.CodeUnavailable,
	ErrNotOwner:       core.CodeConflict,
	ErrUnknownNode:    core.CodeNotFound,
	ErrModuleMissing:  core.CodeNotFound,
	ErrChecksum:       core.CodeBadRequest,
	ErrBadCommand:     core.CodeBadRequest,
	ErrTooLarge:       core.CodeMessageTooLarge,
	ErrUnauthorized:   core.CodeForbidden,
	ErrConflict:       core.CodeConflict,
	ErrNotFound:       core.CodeNotFound,
	ErrUpgradePending: core.CodeUnavailable,
}

// wireName returns the stable name of the sentinel err wraps, or "internal".
func wireName(err error) string {
	for s, name := range wireNames {
		if errors.Is(err, s) {
			return name
		}
	}
	return "internal"
}

// fromWire rebuilds an error from its wire name and message.
func fromWire(name, msg string) error {
	if s, ok := wireErrors[name]; ok {
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, s.Error()), ": ")
		if msg == "" {
			return s
		}
		return fmt.Errorf("%w: %s", s, msg)
	}
	return errors.New(msg)
}

// public wraps err in a *core.Error with the code of its sentinel, unless it
// already carries one. nil stays nil.
func public(err error) error {
	if err == nil {
		return nil
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	code := core.CodeInternal
	for s, c := range codes {
		if errors.Is(err, s) {
			code = c
			break
		}
	}
	return &core.Error{Code: code, Message: "cluster state", Err: err}
}

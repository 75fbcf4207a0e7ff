package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/parleyhq/parley/abi"
)

// handlers holds the registered handler of each hook. Registration happens
// in init functions, before any hook runs, so no locking is needed.
var handlers struct {
	init      func(abi.InitRequest) error
	auth      func(abi.AuthRequest) abi.AuthResult
	join      func(abi.JoinRequest) abi.Decision
	publish   func(abi.PublishRequest) abi.Decision
	subscribe func(abi.SubscribeRequest) abi.Decision
	presence  func(abi.PresenceEvent) error
	raw       map[abi.Hook]func([]byte) ([]byte, error)
}

// OnInit registers fn to run once per instance, before any other hook.
// Returning an error aborts the plugin's load with that message.
func OnInit(fn func(abi.InitRequest) error) { handlers.init = fn }

// OnAuth registers the auth hook handler.
func OnAuth(fn func(abi.AuthRequest) abi.AuthResult) { handlers.auth = fn }

// OnJoin registers the join hook handler.
func OnJoin(fn func(abi.JoinRequest) abi.Decision) { handlers.join = fn }

// OnPublish registers the publish hook handler.
func OnPublish(fn func(abi.PublishRequest) abi.Decision) { handlers.publish = fn }

// OnSubscribe registers the subscribe hook handler.
func OnSubscribe(fn func(abi.SubscribeRequest) abi.Decision) { handlers.subscribe = fn }

// OnPresence registers the presence hook handler. An error is logged by
// the host; presence fails open.
func OnPresence(fn func(abi.PresenceEvent) error) { handlers.presence = fn }

// HandleRaw registers fn as the handler of hook h, taking precedence over
// a typed handler: fn receives the input bytes as the host sent them and
// returns the output bytes unchecked. For plugins that bring their own
// codec, and for tests of the host's defences.
func HandleRaw(h abi.Hook, fn func(input []byte) (output []byte, err error)) {
	if handlers.raw == nil {
		handlers.raw = map[abi.Hook]func([]byte) ([]byte, error){}
	}
	handlers.raw[h] = fn
}

// Registered returns the hooks that have a handler, init excluded.
func Registered() []abi.Hook {
	var hs []abi.Hook
	for _, h := range abi.Hooks {
		if h == abi.HookInit {
			continue
		}
		if _, ok := handlers.raw[h]; ok || typed(h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// typed reports whether hook h has a typed handler.
func typed(h abi.Hook) bool {
	switch h {
	case abi.HookAuth:
		return handlers.auth != nil
	case abi.HookJoin:
		return handlers.join != nil
	case abi.HookPublish:
		return handlers.publish != nil
	case abi.HookSubscribe:
		return handlers.subscribe != nil
	case abi.HookPresence:
		return handlers.presence != nil
	}
	return false
}

// ErrNoHandler is returned by Dispatch for a hook without a handler.
var ErrNoHandler = errors.New("plugin: no handler for hook")

// Dispatch runs the handler of hook h on a JSON input and returns its JSON
// output (nil for presence). It is what the exported hook functions call;
// tests call it to exercise the exact decode/encode path. Decoded strings
// may alias input, so input must not change afterwards. A panicking
// handler is reported as an error.
func Dispatch(h abi.Hook, input []byte) (output []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin: %s handler panicked: %v\n%s", h, r, debug.Stack())
		}
	}()
	if fn, ok := handlers.raw[h]; ok && h != abi.HookInit {
		return fn(input)
	}
	switch h {
	case abi.HookInit:
		return dispatchInit(input)
	case abi.HookAuth:
		return dispatchAuth(input)
	case abi.HookJoin:
		return dispatchJoin(input)
	case abi.HookPublish, abi.HookSubscribe:
		return dispatchTrack(h, input)
	case abi.HookPresence:
		return nil, dispatchPresence(input)
	}
	return nil, noHandler(h)
}

func dispatchInit(input []byte) ([]byte, error) {
	if handlers.init != nil {
		var req abi.InitRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return nil, fmt.Errorf("plugin: decode init request: %w", err)
		}
		if err := handlers.init(req); err != nil {
			return nil, err
		}
	}
	return json.Marshal(abi.InitResult{Hooks: Registered()})
}

func dispatchPresence(input []byte) error {
	if handlers.presence == nil {
		return noHandler(abi.HookPresence)
	}
	ev, err := decodePresenceEvent(input)
	if err != nil {
		return decodeErr(abi.HookPresence, err)
	}
	return handlers.presence(ev)
}

func noHandler(h abi.Hook) error { return fmt.Errorf("%w %q", ErrNoHandler, h) }

func decodeErr(h abi.Hook, err error) error {
	return fmt.Errorf("plugin: decode %s request: %w", h, err)
}

func dispatchAuth(input []byte) ([]byte, error) {
	if handlers.auth == nil {
		return nil, noHandler(abi.HookAuth)
	}
	req, err := decodeAuthRequest(input)
	if err != nil {
		return nil, decodeErr(abi.HookAuth, err)
	}
	return appendAuthResult(make([]byte, 0, 256), handlers.auth(req)), nil
}

func dispatchJoin(input []byte) ([]byte, error) {
	if handlers.join == nil {
		return nil, noHandler(abi.HookJoin)
	}
	req, err := decodeJoinRequest(input)
	if err != nil {
		return nil, decodeErr(abi.HookJoin, err)
	}
	return appendDecision(make([]byte, 0, 128), handlers.join(req)), nil
}

// dispatchTrack serves publish and subscribe, whose requests share a shape.
func dispatchTrack(h abi.Hook, input []byte) ([]byte, error) {
	if h == abi.HookPublish && handlers.publish == nil || h == abi.HookSubscribe && handlers.subscribe == nil {
		return nil, noHandler(h)
	}
	req, err := decodeTrackRequest(input)
	if err != nil {
		return nil, decodeErr(h, err)
	}
	var d abi.Decision
	if h == abi.HookPublish {
		d = handlers.publish(req)
	} else {
		d = handlers.subscribe(abi.SubscribeRequest(req))
	}
	return appendDecision(make([]byte, 0, 128), d), nil
}

// Invoke encodes req, dispatches it to hook h and decodes the output into
// Resp: the host's view of a call, for plugin tests under plain go test.
func Invoke[Resp any](h abi.Hook, req any) (Resp, error) {
	var resp Resp
	in, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("plugin: encode request: %w", err)
	}
	out, err := Dispatch(h, in)
	if err != nil || out == nil {
		return resp, err
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("plugin: decode %s output: %w", h, err)
	}
	return resp, nil
}

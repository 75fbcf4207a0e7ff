package abi

// Hook names one entry point a plugin may export.
type Hook string

// Hooks of ABI v1. Every hook is optional; a plugin serves the hooks it
// exports (narrowed by InitResult.Hooks when its init hook sets them).
const (
	// HookInit runs once per instance, before any other hook. Input:
	// InitRequest. Output (optional): InitResult. Failure aborts the load.
	HookInit Hook = "init"
	// HookAuth verifies a client token. Input: AuthRequest. Output:
	// AuthResult. Fails closed.
	HookAuth Hook = "auth"
	// HookJoin decides whether a participant may join a room. Input:
	// JoinRequest. Output: Decision. Fails closed.
	HookJoin Hook = "join"
	// HookPublish decides whether a participant may publish a track.
	// Input: PublishRequest. Output: Decision. Fails closed.
	HookPublish Hook = "publish"
	// HookSubscribe decides whether a participant may subscribe to a
	// track. Input: SubscribeRequest. Output: Decision. Fails closed.
	HookSubscribe Hook = "subscribe"
	// HookPresence observes presence changes: a participant joining or
	// leaving, a room starting or finishing, a track published or
	// unpublished. Input: PresenceEvent. Output: none. Fails open.
	HookPresence Hook = "presence"
)

// Hooks lists every hook in a stable order.
var Hooks = []Hook{HookInit, HookAuth, HookJoin, HookPublish, HookSubscribe, HookPresence}

// Export returns the name of the guest export implementing the hook,
// "parley_" followed by the hook name.
func (h Hook) Export() string { return "parley_" + string(h) }

// Valid reports whether h is a known hook.
func (h Hook) Valid() bool {
	for _, k := range Hooks {
		if k == h {
			return true
		}
	}
	return false
}

// FailsOpen reports whether a failure of the hook (trap, timeout, bad
// output) lets the event through. Only presence fails open.
func (h Hook) FailsOpen() bool { return h == HookPresence }

// HookForExport returns the hook an export name implements.
func HookForExport(name string) (Hook, bool) {
	for _, h := range Hooks {
		if h.Export() == name {
			return h, true
		}
	}
	return "", false
}

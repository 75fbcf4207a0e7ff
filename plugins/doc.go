// Package plugins hosts Parley's WebAssembly plugins on wazero: it loads
// modules that follow the ABI of package abi (docs/abi.md), runs their
// hooks under per-plugin limits, chains them, and swaps them at run time
// without dropping a call.
//
// # Wiring
//
//	m, err := plugins.NewManager(cfg, logger,
//		plugins.WithWebhookSink(outbox)) // optional; a DirectSink otherwise
//	defer m.Close(ctx)
//	err = m.Load(ctx, spec)              // or ReloadDir(ctx, dir), Sync(ctx, specs)
//	var auth core.Authenticator = m      // the auth chain
//	var policy core.Policy = m           // join, publish and subscribe chains
//	var presence core.Presence = m       // presence chain (fails open)
//
// For durable presence webhooks, the cluster leader (or a single node)
// runs the presence chain over its committed journal instead, and stores
// what it returns in its outbox with the journal cursor:
//
//	ws, err := m.PresenceWebhooks(ctx, entry.Event) // the sink is not used
//	if plugins.IsTransient(err) { /* retry the entry later */ }
//
// Statistics (Manager.Stats, Manager.List) include per-hook latency
// histograms and failures by kind (Stats.Hooks) for metrics.
//
// A Spec is a module's bytes plus the operator's metadata (name, version,
// sha256, configuration, granted capabilities, limits, order), so the
// loader does not care whether the bytes came from a directory, the admin
// API or a replicated store. StockSpec fills in the metadata of the
// plugins Parley ships.
//
// # Model
//
// Each loaded version of a plugin is a generation: its own wazero runtime
// (carrying the plugin's memory cap and wazero's close-on-context-done
// termination, sharing one compilation cache with a file-backed store),
// the host modules of its granted capabilities, and a pool of instances
// warmed before the generation serves. Calls take an instance from the
// pool, run one hook under a context deadline, and return it, or discard
// it after a trap, exit, timeout, out-of-memory or bad output. Plugins
// that keep failing are backed off. Replace builds the new generation,
// publishes it in an atomically swapped snapshot, then drains and closes
// the old one; every call holds the generations of one snapshot for its
// whole chain, so it never mixes a plugin's generations or sees one being
// built or closed.
//
// Hook outputs are validated on the host (decode.go) before any decision
// is taken: a plugin can deny, but never crash or confuse the server.
package plugins

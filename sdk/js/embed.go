// Package parleyjs embeds the browser SDK (parley.js, transport.js and
// parley.d.ts) so the server can serve it without a build step.
package parleyjs

import "embed"

// Files holds the SDK's .js and .d.ts files at its root.
//
//go:embed *.js *.d.ts
var Files embed.FS

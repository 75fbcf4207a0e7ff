// Package browsertest holds Parley's real-browser end-to-end tests: headless
// Chromium (Debian's package, installed by `make deps`) driven with
// chromedp against a real `parley serve --dev` process, over WebSocket and
// WebTransport. The package has no code of its own outside its tests.
package browsertest

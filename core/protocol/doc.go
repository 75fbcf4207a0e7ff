// Package protocol defines Parley's signaling wire format: the envelope every
// message travels in, the message types, and their payloads. The same JSON
// runs over WebSocket (one message per text frame) and WebTransport (one
// message per line on the control stream). docs/protocol.md is the prose
// description of what is here.
//
// The package imports only core and the standard library, so clients can use
// it without pulling in the server.
package protocol

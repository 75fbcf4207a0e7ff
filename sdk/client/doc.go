// Package client is the Go client SDK for Parley, the open-source SFU.
//
// A Client joins one room over a signaling connection (docs/protocol.md),
// publishes local tracks on a publisher peer connection, receives the other
// participants' tracks on a subscriber peer connection, and exchanges small
// JSON data messages with the room.
//
// # Transports
//
// Signaling runs over WebSocket or WebTransport (HTTP/3), chosen per client by
// the URL's scheme or with WithTransport:
//
//	ws://host:7880/v1/signal     WebSocket (wss:// with TLS)
//	https://host:7071/v1/signal  WebTransport, on the server's UDP port
//
// The client behaves the same on both: requests, events, keep-alive,
// reconnection and resumption; a session may even resume on the other
// transport. A development server's WebTransport certificate is self-signed
// and short-lived: pin it by hash, as browsers do with
// serverCertificateHashes, with WithCertHash and the hashes the server
// publishes (FetchCertHashes). WithTLSConfig sets roots, client
// certificates and the like for wss and WebTransport alike, and
// WithQUICConfig tunes QUIC (an idle timeout shorter than the ping interval
// notices a dead network sooner).
//
//	hashes, err := client.FetchCertHashes(ctx, "http://localhost:7880/v1/cert-hash")
//	if err != nil { ... }
//	c, err := client.New("https://127.0.0.1:7071/v1/signal", token, client.WithCertHash(hashes...))
//
// # Lifecycle
//
// New builds a client without touching the network, so callbacks can be
// registered before anything arrives; Connect dials and joins the room the
// token names. Dial does both at once. Leave says goodbye and tears down;
// Close tears down without saying goodbye (the server keeps the participant
// for its resume grace period, then removes it).
//
//	c, err := client.New("ws://localhost:7880/v1/signal", token)
//	if err != nil { ... }
//	c.OnTrack(func(t *client.RemoteTrack) { go consume(t) })
//	if err := c.Connect(ctx); err != nil { ... }
//	defer c.Close()
//
// # Concurrency
//
// All methods are safe for concurrent use. One goroutine reads the signaling
// connection; a second applies media signaling (offers, ICE candidates) in
// order; a third runs user callbacks one at a time, in the order the events
// arrived. Callbacks may call any client method, including Close and Leave,
// but a callback that blocks delays the callbacks after it: read media in a
// goroutine of your own.
//
// # Reconnection
//
// When the signaling connection drops (not after Leave, Close, or a closing
// event that ends the session), the client redials with backoff, over the
// same transport, and resumes its session within the server's grace period.
// The peer connections stay up, so media keeps flowing while signaling is
// away. Requests made meanwhile wait for the new connection. OnStateChange
// and OnReconnect report progress; if the session cannot be resumed, the
// client closes and OnClose reports why.
//
// # Errors
//
// A request the server refuses fails with a *core.Error, so callers branch
// with errors.Is(err, core.ErrForbidden) and friends. Failures of the client
// itself match the sentinel errors of this package (ErrClosed,
// ErrDisconnected, ...).
package client

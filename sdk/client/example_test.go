package client_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/sdk/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/quic-go/quic-go"
)

// Connect to a room and publish a VP8 track fed with RTP packets (from an
// encoder, a file, a camera pipeline...).
func Example() {
	ctx := context.Background()
	token := "eyJ..." // from `parley token` or your backend
	c, err := client.Dial(ctx, "ws://localhost:7880/v1/signal", token)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Leave(ctx)

	video, err := c.PublishRTP(ctx, webrtc.MimeTypeVP8)
	if errors.Is(err, core.ErrForbidden) {
		log.Fatal("this token may not publish")
	} else if err != nil {
		log.Fatal(err)
	}
	// The server asks for a keyframe when a subscriber needs one.
	video.OnKeyframeRequest(func() { /* tell the encoder */ })

	var seq uint16
	for frame := range encodedVP8Frames() {
		seq++
		err := video.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
			Payload: frame,
		})
		if err != nil {
			log.Print(err)
		}
	}
	info, err := video.WaitPublished(ctx)
	if err == nil {
		log.Printf("published as %s", info.ID)
	}
}

// Receive the other participants' tracks. Register callbacks between New and
// Connect so that no track is missed.
func ExampleClient_OnTrack() {
	ctx := context.Background()
	c, err := client.New("ws://localhost:7880/v1/signal", "eyJ...", client.WithLogger(nil))
	if err != nil {
		log.Fatal(err)
	}
	c.OnTrack(func(t *client.RemoteTrack) {
		log.Printf("%s sends %s (%s)", t.Identity(), t.Kind(), t.Info().MimeType)
		go func() { // read media off the callback goroutine
			for {
				pkt, _, err := t.ReadRTP()
				if err != nil {
					return // unsubscribed, unpublished or closed
				}
				_ = pkt.Payload // decode, record, forward...
			}
		}()
	})
	c.OnParticipantLeft(func(p client.ParticipantLeft) { log.Printf("%s left (%s)", p.Identity, p.Reason) })
	c.OnStateChange(func(s client.State) { log.Printf("signaling %s", s) })
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, p := range c.Participants() { // who was there before us
		log.Printf("%s is here with %d tracks", p.Identity, len(p.Tracks))
	}
	<-c.Done()
}

// Exchange JSON data messages with the room and with one participant.
func ExampleClient_SendData() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New("ws://localhost:7880/v1/signal", "eyJ...")
	if err != nil {
		log.Fatal(err)
	}
	type chat struct {
		Text string `json:"text"`
	}
	c.OnData(func(m client.DataMessage) {
		var msg chat
		if err := m.Decode(&msg); err == nil {
			log.Printf("%s says %q (private: %v)", m.FromIdentity, msg.Text, m.To != "")
		}
	})
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Leave(ctx)

	if err := c.SendData(ctx, "", chat{Text: "hello, room"}); err != nil {
		log.Print(err)
	}
	for _, p := range c.Participants() {
		if p.Identity == "bob" {
			_ = c.SendData(ctx, p.ID, chat{Text: "hello, bob"})
		}
	}
}

func encodedVP8Frames() func(func([]byte) bool) { return func(func([]byte) bool) {} }

// Signal over WebTransport (HTTP/3) to a development server, whose
// self-signed certificate is pinned by the hashes it publishes. An https URL
// selects WebTransport; everything else works as over WebSocket.
func ExampleWithCertHash() {
	ctx := context.Background()
	hashes, err := client.FetchCertHashes(ctx, "http://localhost:7880/v1/cert-hash")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(ctx, "https://127.0.0.1:7071/v1/signal", "eyJ...",
		client.WithCertHash(hashes...),
		// Notice a dead network within seconds rather than at the next ping.
		client.WithQUICConfig(&quic.Config{MaxIdleTimeout: 5 * time.Second, KeepAlivePeriod: time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Leave(ctx)
	log.Printf("joined over %s", c.Transport())
}

// Choose the transport explicitly: a wss URL names the WebSocket endpoint,
// WithTransport makes the choice plain whatever the scheme.
func ExampleWithTransport() {
	c, err := client.New("wss://parley.example.com/v1/signal", "eyJ...",
		client.WithTransport(client.TransportWebSocket))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		log.Fatal(err)
	}
}

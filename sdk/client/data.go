package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/parleyhq/parley/core/protocol"
)

// DataMessage is a data message received from another participant or
// from the server.
type DataMessage struct {
	// From is the sender's participant id, or "server"
	// (protocol.ServerSender) for a message the server API sent; see
	// FromServer.
	From string
	// FromIdentity is the sender's identity.
	FromIdentity string
	// To is this participant's id when the message was sent to it alone,
	// empty when it was sent to the room.
	To string
	// Payload is the JSON value sent.
	Payload json.RawMessage
}

// FromServer reports whether the server (its API), not a participant,
// sent the message.
func (m DataMessage) FromServer() bool { return m.From == protocol.ServerSender }

// Decode unmarshals the payload into v.
func (m DataMessage) Decode(v any) error {
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("client: decode data payload: %w", err)
	}
	return nil
}

// SendData sends a small JSON payload to the room (to == "") or to one
// participant (to = its participant id). payload is marshaled with
// encoding/json; pass a json.RawMessage to send JSON as is. The server
// bounds the payload (16 KiB by default) and requires the
// can_publish_data grant.
func (c *Client) SendData(ctx context.Context, to string, payload any) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("client: send data: %w", err)
	}
	if err := c.call(ctx, protocol.TypeData, protocol.DataRequest{To: to, Payload: raw}, nil); err != nil {
		return fmt.Errorf("client: send data: %w", err)
	}
	return nil
}

func (c *Client) onDataEvent(msg *protocol.Message) error {
	var ev protocol.DataEvent
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	dm := DataMessage{From: ev.From, FromIdentity: ev.FromIdentity, To: ev.To, Payload: json.RawMessage(ev.Payload)}
	c.emit(func(h *handlers) {
		if h.onData != nil {
			h.onData(dm)
		}
	})
	return nil
}

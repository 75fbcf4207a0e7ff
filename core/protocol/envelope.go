package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/core"
)

// Version is the protocol version this package speaks. A message with another
// version is answered with core.CodeUnsupportedVersion.
const Version = 1

// MaxIDLength bounds request ids.
const MaxIDLength = 64

// Message is the envelope of every signaling message.
//
// A request from the client has an ID and a Type. The response to it echoes
// both, with OK set and Data or Error filled in. A server-pushed event has a
// Type and no ID.
type Message struct {
	V     int             `json:"v"`
	ID    string          `json:"id,omitempty"`
	Type  string          `json:"type"`
	OK    *bool           `json:"ok,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error *ErrorBody      `json:"error,omitempty"`
}

// ErrorBody is the error part of a failed response.
type ErrorBody struct {
	Code    core.Code `json:"code"`
	Message string    `json:"message"`
	// URL is where to reconnect and join again, for code "redirect".
	URL string `json:"url,omitempty"`
}

// IsResponse reports whether m answers a request.
func (m *Message) IsResponse() bool { return m.OK != nil }

// Err returns the response's error as a *core.Error, or nil on success.
func (m *Message) Err() error {
	if m.OK == nil || *m.OK {
		return nil
	}
	if m.Error == nil {
		return &core.Error{Code: core.CodeInternal, Message: "response failed without an error body"}
	}
	return &core.Error{Code: m.Error.Code, Message: m.Error.Message, URL: m.Error.URL}
}

// Decode parses one message from the wire. It rejects messages that are not
// a single JSON object, carry an unknown field, an unsupported version, a
// missing type, or an over-long id. The error is a *core.Error whose code
// tells the client what was wrong; the returned Message holds whatever ID
// and Type could be read so the error can be correlated.
func Decode(b []byte) (Message, error) { return decode(b, true) }

// DecodeLenient is Decode for clients reading server messages: unknown
// fields are ignored, so a newer server that adds fields does not break an
// older client. The server itself stays strict about what clients send.
func DecodeLenient(b []byte) (Message, error) { return decode(b, false) }

func decode(b []byte, strict bool) (Message, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&m); err != nil {
		return partial(b), core.Errorf(core.CodeMalformed, "message is not a valid envelope: %v", err)
	}
	if dec.More() {
		return Message{ID: m.ID, Type: m.Type}, core.Errorf(core.CodeMalformed, "trailing data after message")
	}
	if len(m.ID) > MaxIDLength {
		m.ID = ""
		return m, core.Errorf(core.CodeBadRequest, "request id longer than %d bytes", MaxIDLength)
	}
	if m.V != Version {
		return m, core.Errorf(core.CodeUnsupportedVersion, "protocol version %d not supported; this server speaks %d", m.V, Version)
	}
	if m.Type == "" {
		return m, core.Errorf(core.CodeMalformed, "message has no type")
	}
	return m, nil
}

// partial extracts id and type from a message that failed to decode, best
// effort, so the error can name the request it answers.
func partial(b []byte) Message {
	var p struct {
		ID   any `json:"id"`
		Type any `json:"type"`
	}
	var m Message
	if json.Unmarshal(b, &p) == nil {
		if s, ok := p.ID.(string); ok && len(s) <= MaxIDLength {
			m.ID = s
		}
		if s, ok := p.Type.(string); ok && len(s) <= 64 {
			m.Type = s
		}
	}
	return m
}

// DecodeData unmarshals a message's data into v, rejecting unknown fields.
// Missing data decodes as an empty object.
func DecodeData(m *Message, v any) error { return decodeData(m, v, true) }

// DecodeDataLenient is DecodeData ignoring unknown fields, for clients.
func DecodeDataLenient(m *Message, v any) error { return decodeData(m, v, false) }

func decodeData(m *Message, v any, strict bool) error {
	if len(m.Data) == 0 || bytes.Equal(m.Data, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return core.Errorf(core.CodeBadRequest, "%s: invalid data: %v", m.Type, err)
	}
	return nil
}

// Request builds a client request.
func Request(id, typ string, data any) ([]byte, error) {
	return encode(Message{V: Version, ID: id, Type: typ}, data)
}

// Event builds a server-pushed event.
func Event(typ string, data any) ([]byte, error) {
	return encode(Message{V: Version, Type: typ}, data)
}

// Response builds the successful answer to a request.
func Response(id, typ string, data any) ([]byte, error) {
	ok := true
	return encode(Message{V: Version, ID: id, Type: typ, OK: &ok}, data)
}

// ErrorResponse builds the failed answer to a request. typ may be empty when
// the request's type could not be read; it is then "error".
func ErrorResponse(id, typ string, err error) []byte {
	if typ == "" {
		typ = TypeError
	}
	ok := false
	body := &ErrorBody{Code: core.CodeOf(err), Message: err.Error()}
	var ce *core.Error
	if errors.As(err, &ce) {
		body.Message, body.URL = ce.Message, ce.URL
	}
	b, _ := json.Marshal(Message{V: Version, ID: id, Type: typ, OK: &ok, Error: body})
	return b
}

func encode(m Message, data any) ([]byte, error) {
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("encode %s data: %w", m.Type, err)
		}
		m.Data = raw
	}
	return json.Marshal(m)
}

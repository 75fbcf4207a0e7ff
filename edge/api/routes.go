package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
)

// maxPluginUpload bounds a plugin upload (module plus manifest).
const maxPluginUpload = 64 << 20

// table lists every endpoint. docs/openapi.json documents each one (a test
// checks).
func (s *Server) table() []route {
	return []route{
		{pattern: "GET /v1/rooms", h: func(c *call) { c.run(http.StatusOK, "room.list", &listRooms{}) }},
		{pattern: "POST /v1/rooms", h: handleCreateRoom},
		{pattern: "GET /v1/rooms/{room}", h: func(c *call) { c.runPath(http.StatusOK, "room.get", &getRoom{Room: c.r.PathValue("room")}) }},
		{pattern: "DELETE /v1/rooms/{room}", h: func(c *call) {
			c.runPath(http.StatusOK, "room.close", &closeRoom{Room: c.r.PathValue("room"), Reason: c.r.URL.Query().Get("reason")})
		}},
		{pattern: "GET /v1/rooms/{room}/participants", h: func(c *call) {
			c.runPath(http.StatusOK, "participant.list", &listParticipants{Room: c.r.PathValue("room")})
		}},
		{pattern: "GET /v1/rooms/{room}/participants/{participant}", h: func(c *call) {
			c.runPath(http.StatusOK, "participant.get", &getParticipant{Room: c.r.PathValue("room"), Participant: c.r.PathValue("participant")})
		}},
		{pattern: "DELETE /v1/rooms/{room}/participants/{participant}", h: func(c *call) {
			c.runPath(http.StatusOK, "participant.remove", &removeParticipant{Room: c.r.PathValue("room"), Participant: c.r.PathValue("participant"), Reason: c.r.URL.Query().Get("reason")})
		}},
		{pattern: "PATCH /v1/rooms/{room}/participants/{participant}", h: handleUpdateParticipant},
		{pattern: "POST /v1/rooms/{room}/participants/{participant}/tracks/{track}/mute", h: handleMute},
		{pattern: "POST /v1/rooms/{room}/data", h: handleSendData},
		{pattern: "POST /v1/actions", limit: s.cfg.MaxPayloadBytes, h: handleActions},

		{pattern: "GET /v1/plugins", h: handlePluginList},
		{pattern: "PUT /v1/plugins/{name}", limit: maxPluginUpload, h: handlePluginLoad},
		{pattern: "DELETE /v1/plugins/{name}", h: handlePluginUnload},
		{pattern: "POST /v1/plugins/reload", h: handlePluginReload},

		{pattern: "GET /v1/webhooks", h: handleWebhookList},
		{pattern: "DELETE /v1/webhooks", h: handleWebhookClear},
		{pattern: "POST /v1/webhooks/retry", h: handleWebhookRetry},

		{pattern: "GET /v1/keys", admin: true, h: handleKeyList},
		{pattern: "POST /v1/keys", admin: true, h: handleKeyCreate},
		{pattern: "DELETE /v1/keys/{id}", admin: true, h: handleKeyRevoke},
		{pattern: "GET /v1/signing-keys", admin: true, h: handleSigningKeyList},
		{pattern: "POST /v1/signing-keys/rotate", admin: true, h: handleSigningKeyRotate},
		{pattern: "POST /v1/signing-keys/retire", admin: true, h: handleSigningKeyRetire},
	}
}

// runPath validates prm (built from the path) and runs it; a body is
// refused on these endpoints.
func (c *call) runPath(status int, name string, prm params) {
	if len(strings.TrimSpace(string(c.body))) > 0 {
		c.fail(core.Errorf(core.CodeBadRequest, "this endpoint takes no body"))
		return
	}
	if err := prm.validate(); err != nil {
		c.fail(err)
		return
	}
	c.run(status, name, prm)
}

// decodeInto decodes the body into prm, then validates it.
func (c *call) decodeInto(prm params, optional bool) bool {
	if err := c.decode(prm, optional); err != nil {
		c.fail(err)
		return false
	}
	if err := prm.validate(); err != nil {
		c.fail(err)
		return false
	}
	return true
}

// createBody is the body of POST /v1/rooms.
type createBody struct {
	Name            string `json:"name"`
	MaxParticipants int    `json:"max_participants,omitempty"`
	Metadata        string `json:"metadata,omitempty"`
	EmptyTimeout    int    `json:"empty_timeout,omitempty"`
}

func handleCreateRoom(c *call) {
	var b createBody
	if err := c.decode(&b, false); err != nil {
		c.fail(err)
		return
	}
	prm := &createRoom{Room: b.Name, MaxParticipants: b.MaxParticipants, Metadata: b.Metadata, EmptyTimeout: b.EmptyTimeout}
	if err := prm.validate(); err != nil {
		c.fail(err)
		return
	}
	c.run(http.StatusCreated, "room.create", prm)
}

// grantsBody is the body of PATCH .../participants/{participant}.
type grantsBody struct {
	CanPublish     *bool `json:"can_publish,omitempty"`
	CanSubscribe   *bool `json:"can_subscribe,omitempty"`
	CanPublishData *bool `json:"can_publish_data,omitempty"`
}

func handleUpdateParticipant(c *call) {
	var b grantsBody
	if err := c.decode(&b, false); err != nil {
		c.fail(err)
		return
	}
	prm := &updateParticipant{Room: c.r.PathValue("room"), Participant: c.r.PathValue("participant"),
		CanPublish: b.CanPublish, CanSubscribe: b.CanSubscribe, CanPublishData: b.CanPublishData}
	if err := prm.validate(); err != nil {
		c.fail(err)
		return
	}
	c.run(http.StatusOK, "participant.update", prm)
}

func handleMute(c *call) {
	var b struct {
		Muted *bool `json:"muted"`
	}
	if err := c.decode(&b, false); err != nil {
		c.fail(err)
		return
	}
	prm := &muteTrack{Room: c.r.PathValue("room"), Participant: c.r.PathValue("participant"), Track: c.r.PathValue("track"), Muted: b.Muted}
	if err := prm.validate(); err != nil {
		c.fail(err)
		return
	}
	c.run(http.StatusOK, "track.mute", prm)
}

func handleSendData(c *call) {
	prm := &sendData{}
	var b struct {
		To      []string        `json:"to,omitempty"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := c.decode(&b, false); err != nil {
		c.fail(err)
		return
	}
	prm.Room, prm.To, prm.Payload = c.r.PathValue("room"), b.To, b.Payload
	if err := prm.validate(); err != nil {
		c.fail(err)
		return
	}
	c.run(http.StatusOK, "data.send", prm)
}

var (
	errNoPlugins  = core.Errorf(core.CodeUnavailable, "plugins are not managed on this node")
	errNoWebhooks = core.Errorf(core.CodeUnavailable, "webhooks are not managed on this node")
	errNoKeys     = core.Errorf(core.CodeUnavailable, "API keys are not managed on this node")
)

func handlePluginList(c *call) {
	if c.s.deps.Plugins == nil {
		c.fail(errNoPlugins)
		return
	}
	c.ok(http.StatusOK, c.s.deps.Plugins.PluginList())
}

// handlePluginLoad takes multipart/form-data with a "module" file part and
// an optional "manifest" part, as the admin API does.
func handlePluginLoad(c *call) {
	if c.s.deps.Plugins == nil {
		c.fail(errNoPlugins)
		return
	}
	if err := c.r.ParseMultipartForm(8 << 20); err != nil {
		c.fail(core.Errorf(core.CodeBadRequest, "want multipart/form-data with a module part: %v", err))
		return
	}
	f, _, err := c.r.FormFile("module")
	if err != nil {
		c.fail(core.Errorf(core.CodeBadRequest, "missing module part: %v", err))
		return
	}
	defer f.Close()
	module, err := io.ReadAll(f)
	if err != nil {
		c.fail(core.Errorf(core.CodeBadRequest, "read module: %v", err))
		return
	}
	res, err := c.s.deps.Plugins.PluginLoad(c.r.Context(), c.r.PathValue("name"), module, []byte(c.r.FormValue("manifest")))
	if err != nil {
		c.failPlugin(err)
		return
	}
	c.ok(http.StatusOK, res)
}

// failPlugin answers a plugin error: a plugin that does not load is 422.
func (c *call) failPlugin(err error) {
	switch core.CodeOf(err) {
	case core.CodeBadRequest, core.CodeInternal:
		writeErrorStatus(c.w, http.StatusUnprocessableEntity, err)
	default:
		c.fail(err)
	}
}

func handlePluginUnload(c *call) {
	if c.s.deps.Plugins == nil {
		c.fail(errNoPlugins)
		return
	}
	if err := c.s.deps.Plugins.PluginUnload(c.r.Context(), c.r.PathValue("name")); err != nil {
		c.failPlugin(err)
		return
	}
	c.ok(http.StatusOK, map[string]string{"unloaded": c.r.PathValue("name")})
}

func handlePluginReload(c *call) {
	if c.s.deps.Plugins == nil {
		c.fail(errNoPlugins)
		return
	}
	res, err := c.s.deps.Plugins.PluginReload(c.r.Context())
	if err != nil {
		c.failPlugin(err)
		return
	}
	c.ok(http.StatusOK, res)
}

// webhookQuery reads ?host= and ?dead=, failing when the node has no
// webhook outbox.
func (c *call) webhookQuery() (host string, dead bool, err error) {
	if c.s.deps.Webhooks == nil {
		return "", false, errNoWebhooks
	}
	q := c.r.URL.Query()
	host = q.Get("host")
	if d := q.Get("dead"); d != "" {
		if dead, err = strconv.ParseBool(d); err != nil {
			return "", false, core.Errorf(core.CodeBadRequest, "dead must be true/false or 1/0")
		}
	}
	return host, dead, nil
}

func handleWebhookList(c *call) {
	host, dead, err := c.webhookQuery()
	if err != nil {
		c.fail(err)
		return
	}
	list, err := c.s.deps.Webhooks.List(c.r.Context(), dead, host)
	if err != nil {
		c.fail(err)
		return
	}
	for i := range list {
		if list[i].Secret != "" {
			list[i].Secret = "redacted"
		}
		for k := range list[i].Headers {
			if strings.EqualFold(k, "Authorization") {
				list[i].Headers[k] = "redacted"
			}
		}
	}
	if list == nil {
		list = []core.Webhook{}
	}
	c.ok(http.StatusOK, map[string]any{"webhooks": list, "dead": dead, "host": host})
}

func handleWebhookClear(c *call) {
	host, dead, err := c.webhookQuery()
	if err != nil {
		c.fail(err)
		return
	}
	n, err := c.s.deps.Webhooks.Clear(c.r.Context(), host, dead)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, map[string]any{"cleared": n})
}

func handleWebhookRetry(c *call) {
	host, _, err := c.webhookQuery()
	if err != nil {
		c.fail(err)
		return
	}
	n, err := c.s.deps.Webhooks.Retry(c.r.Context(), host)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, map[string]any{"retried": n})
}

// KeyInfo describes an API key without its secret.
type KeyInfo struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

func handleKeyList(c *call) {
	if c.s.deps.Keys == nil {
		c.fail(errNoKeys)
		return
	}
	keys := c.s.deps.Keys.APIKeys()
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyInfo{ID: k.ID, Name: k.Name, Created: k.Created})
	}
	c.ok(http.StatusOK, map[string]any{"keys": out})
}

func handleKeyCreate(c *call) {
	if c.s.deps.Keys == nil {
		c.fail(errNoKeys)
		return
	}
	var b struct {
		Name string `json:"name"`
	}
	if err := c.decode(&b, true); err != nil {
		c.fail(err)
		return
	}
	if len(b.Name) > 256 {
		c.fail(core.Errorf(core.CodeBadRequest, "name exceeds 256 bytes"))
		return
	}
	k := NewKey(b.Name, c.s.now())
	if err := c.s.deps.Keys.PutAPIKey(c.r.Context(), k); err != nil {
		c.fail(err)
		return
	}
	c.s.log.Info("API key created", "key", k.ID, "name", k.Name)
	c.ok(http.StatusCreated, k)
}

func handleKeyRevoke(c *call) {
	if c.s.deps.Keys == nil {
		c.fail(errNoKeys)
		return
	}
	id := c.r.PathValue("id")
	if _, ok := c.s.deps.Keys.APIKey(id); !ok {
		c.fail(core.Errorf(core.CodeNotFound, "no API key %q", id))
		return
	}
	if err := c.s.deps.Keys.DeleteAPIKey(c.r.Context(), id); err != nil {
		c.fail(err)
		return
	}
	c.s.log.Info("API key revoked", "key", id)
	c.ok(http.StatusOK, map[string]string{"revoked": id})
}

// SigningKeyInfo describes a webhook signing key: its public half only.
type SigningKeyInfo struct {
	ID      string    `json:"id"`
	Public  []byte    `json:"public"` // Ed25519 public key (base64 in JSON)
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
}

func signingInfo(k core.SigningKey) SigningKeyInfo {
	return SigningKeyInfo{ID: k.ID, Public: k.Public(), Created: k.Created, Active: k.Active}
}

var errNoSigning = core.Errorf(core.CodeUnavailable, "webhook signing keys are not managed on this node")

func handleSigningKeyList(c *call) {
	if c.s.deps.SigningKeys == nil {
		c.fail(errNoSigning)
		return
	}
	keys := c.s.deps.SigningKeys.SigningKeys()
	out := make([]SigningKeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, signingInfo(k))
	}
	c.ok(http.StatusOK, map[string]any{"keys": out})
}

func handleSigningKeyRotate(c *call) {
	if c.s.deps.SigningKeys == nil {
		c.fail(errNoSigning)
		return
	}
	k, err := c.s.deps.SigningKeys.RotateSigningKey(c.r.Context())
	if err != nil {
		c.fail(err)
		return
	}
	c.s.log.Info("webhook signing key rotated", "key", k.ID)
	c.ok(http.StatusOK, signingInfo(k))
}

func handleSigningKeyRetire(c *call) {
	if c.s.deps.SigningKeys == nil {
		c.fail(errNoSigning)
		return
	}
	n, err := c.s.deps.SigningKeys.RetireSigningKeys(c.r.Context())
	if err != nil {
		c.fail(err)
		return
	}
	c.s.log.Info("old webhook signing keys retired", "count", n)
	c.ok(http.StatusOK, map[string]int{"retired": n})
}

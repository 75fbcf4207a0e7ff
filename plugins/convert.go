package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

// ClientInfo is what the edge knows about the client behind a request.
type ClientInfo struct {
	Host       string // the HTTP host the client reached: the site
	RemoteAddr string
}

type clientKey struct{}

// WithClientInfo returns a context carrying info; Authenticate, Decide and
// Presence pass it to plugins (AuthRequest.Host, JoinRequest.Host,
// PresenceEvent.Site ...).
func WithClientInfo(ctx context.Context, info ClientInfo) context.Context {
	return context.WithValue(ctx, clientKey{}, info)
}

func clientInfo(ctx context.Context) ClientInfo {
	info, _ := ctx.Value(clientKey{}).(ClientInfo)
	return info
}

// claimsToABI converts core claims for a plugin.
func claimsToABI(c core.Claims) abi.Claims {
	out := abi.Claims{
		Identity: c.Identity, Name: c.Name, Room: c.Room, Metadata: c.Metadata,
		Grants: abi.Grants{CanPublish: c.Grants.CanPublish, CanSubscribe: c.Grants.CanSubscribe, CanPublishData: c.Grants.CanPublishData},
	}
	if !c.ExpiresAt.IsZero() {
		out.ExpiresAt = c.ExpiresAt.Unix()
	}
	return out
}

// claimsToCore converts a plugin's claims. abi.Claims.Role has no core
// counterpart yet and is dropped.
func claimsToCore(c abi.Claims) core.Claims {
	out := core.Claims{
		Identity: c.Identity, Name: c.Name, Room: c.Room, Metadata: c.Metadata,
		Grants: core.Grants{CanPublish: c.Grants.CanPublish, CanSubscribe: c.Grants.CanSubscribe, CanPublishData: c.Grants.CanPublishData},
	}
	if c.ExpiresAt != 0 {
		out.ExpiresAt = time.Unix(c.ExpiresAt, 0)
	}
	return out
}

// trackToABI converts a track; nil gives the zero Track.
func trackToABI(t *core.TrackInfo) abi.Track {
	if t == nil {
		return abi.Track{}
	}
	return abi.Track{
		ID: t.ID, ClientTrackID: t.ClientTrackID, ParticipantID: t.ParticipantID,
		Identity: t.Identity, Kind: string(t.Kind), MimeType: t.MimeType, StreamID: t.StreamID,
	}
}

// policyRequest builds the hook and input of a core policy request.
func policyRequest(ctx context.Context, req core.PolicyRequest) (abi.Hook, any, bool) {
	host := clientInfo(ctx).Host
	claims := claimsToABI(req.Claims)
	switch req.Action {
	case core.ActionJoin:
		return abi.HookJoin, abi.JoinRequest{Room: req.Room, ParticipantID: req.ParticipantID,
			Claims: claims, Participants: req.Participants, Host: host}, true
	case core.ActionPublish:
		return abi.HookPublish, abi.PublishRequest{Room: req.Room, ParticipantID: req.ParticipantID,
			Claims: claims, Track: trackToABI(req.Track), Host: host}, true
	case core.ActionSubscribe:
		return abi.HookSubscribe, abi.SubscribeRequest{Room: req.Room, ParticipantID: req.ParticipantID,
			Claims: claims, Track: trackToABI(req.Track), Host: host}, true
	}
	return "", nil, false
}

// presenceToABI converts a presence event. Its id is ev.ID when the event
// has one (a journal's id, the same on every replay), else a hash of the
// event's identifying fields, so the same event always has the same id.
func presenceToABI(ctx context.Context, ev core.PresenceEvent) abi.PresenceEvent {
	out := abi.PresenceEvent{
		ID: ev.ID, Kind: string(ev.Kind), Room: ev.Room, Identity: ev.Identity, ParticipantID: ev.ParticipantID,
		Node: ev.Node, Metadata: ev.Metadata, At: ev.At.UnixMilli(), Reason: ev.Reason, Site: clientInfo(ctx).Host,
		TrackID: ev.TrackID, TrackKind: string(ev.TrackKind),
	}
	if out.ID == "" {
		key := out.Kind + "\x00" + out.Room + "\x00" + out.ParticipantID + "\x00" + out.Identity + "\x00" +
			strconv.FormatInt(ev.At.UnixNano(), 10)
		if out.TrackID != "" {
			key += "\x00" + out.TrackID
		}
		h := sha256.Sum256([]byte(key))
		out.ID = "pe_" + hex.EncodeToString(h[:12])
	}
	return out
}

// decisionToCore converts a merged decision.
func decisionToCore(d abi.Decision) core.Decision {
	out := core.Decision{Allow: d.Allow, Code: core.Code(d.Code), Reason: d.Reason, MaxBitrate: int(d.MaxBitrate)}
	if d.Metadata != nil {
		out.Metadata = *d.Metadata
	}
	if d.Grants != nil {
		out.Grants = &core.Grants{CanPublish: d.Grants.CanPublish, CanSubscribe: d.Grants.CanSubscribe,
			CanPublishData: d.Grants.CanPublishData}
	}
	return out
}

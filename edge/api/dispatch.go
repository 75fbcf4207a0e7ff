package api

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"

	"github.com/parleyhq/parley/core"
)

// params are the decoded parameters of one action. Every REST endpoint
// about rooms and participants is one of these actions too, so both run
// (and are forwarded to a room's owner) the same way.
type params interface {
	// roomName is the room the action concerns, "" for none.
	roomName() string
	// validate reports the first invalid parameter.
	validate() error
	// run performs the action on this node.
	run(ctx context.Context, s *Server) (any, error)
}

// actionNames lists the actions of POST /v1/actions, each with a
// constructor of its parameters.
var actionNames = map[string]func() params{
	"room.list":          func() params { return &listRooms{} },
	"room.get":           func() params { return &getRoom{} },
	"room.create":        func() params { return &createRoom{} },
	"room.close":         func() params { return &closeRoom{} },
	"participant.list":   func() params { return &listParticipants{} },
	"participant.get":    func() params { return &getParticipant{} },
	"participant.remove": func() params { return &removeParticipant{} },
	"participant.update": func() params { return &updateParticipant{} },
	"track.mute":         func() params { return &muteTrack{} },
	"data.send":          func() params { return &sendData{} },
}

// decodeParams decodes raw (absent means {}) as the parameters of action.
func decodeParams(action string, raw json.RawMessage) (params, error) {
	mk, ok := actionNames[action]
	if !ok {
		return nil, core.Errorf(core.CodeUnknownType, "unknown action %q", action)
	}
	prm := mk()
	if len(raw) > 0 && string(raw) != "null" {
		if err := decodeStrict(raw, prm); err != nil {
			return nil, err
		}
	}
	if err := prm.validate(); err != nil {
		return nil, err
	}
	return prm, nil
}

// exec runs an action: on the node that owns its room when that is
// another node of the cluster, else here.
func (s *Server) exec(ctx context.Context, p principal, name string, prm params) (any, error) {
	if room := prm.roomName(); room != "" && s.deps.Cluster != nil && !p.forwarded {
		url, remote, err := s.deps.Cluster.RoomOwner(ctx, room)
		if err != nil {
			return nil, err
		}
		if remote {
			return s.forward(ctx, url, p, name, prm)
		}
	}
	return prm.run(ctx, s)
}

// checkName validates a room, participant or track name.
func checkName(what, v string) error {
	if v == "" {
		return core.Errorf(core.CodeBadRequest, "%s is required", what)
	}
	if len(v) > 256 || strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0 {
		return core.Errorf(core.CodeBadRequest, "%s must be 1-256 printable characters", what)
	}
	return nil
}

var errNoRooms = core.Errorf(core.CodeUnavailable, "rooms are not managed on this node")

func (s *Server) rooms() (Rooms, error) {
	if s.deps.Rooms == nil {
		return nil, errNoRooms
	}
	return s.deps.Rooms, nil
}

func (s *Server) participants() (Participants, error) {
	if s.deps.Participants == nil {
		return nil, errNoRooms
	}
	return s.deps.Participants, nil
}

type listRooms struct{}

func (*listRooms) roomName() string { return "" }
func (*listRooms) validate() error  { return nil }
func (*listRooms) run(ctx context.Context, s *Server) (any, error) {
	rs, err := s.rooms()
	if err != nil {
		return nil, err
	}
	list, err := rs.ListRooms(ctx)
	if list == nil {
		list = []Room{}
	}
	return map[string]any{"rooms": list}, err
}

type getRoom struct {
	Room string `json:"room"`
}

func (a *getRoom) roomName() string { return a.Room }
func (a *getRoom) validate() error  { return checkName("room", a.Room) }
func (a *getRoom) run(ctx context.Context, s *Server) (any, error) {
	rs, err := s.rooms()
	if err != nil {
		return nil, err
	}
	return rs.GetRoom(ctx, a.Room)
}

type createRoom struct {
	Room            string `json:"room"`
	MaxParticipants int    `json:"max_participants,omitempty"`
	Metadata        string `json:"metadata,omitempty"`
	EmptyTimeout    int    `json:"empty_timeout,omitempty"` // seconds
}

func (a *createRoom) roomName() string { return a.Room }
func (a *createRoom) validate() error {
	if err := checkName("room", a.Room); err != nil {
		return err
	}
	switch {
	case a.MaxParticipants < 0 || a.MaxParticipants > 100000:
		return core.Errorf(core.CodeBadRequest, "max_participants must be 0 (the node's limit) to 100000")
	case len(a.Metadata) > 64<<10:
		return core.Errorf(core.CodeBadRequest, "metadata exceeds 64 KiB")
	case a.EmptyTimeout < 0 || a.EmptyTimeout > 86400:
		return core.Errorf(core.CodeBadRequest, "empty_timeout must be 0 to 86400 seconds")
	}
	return nil
}
func (a *createRoom) run(ctx context.Context, s *Server) (any, error) {
	rs, err := s.rooms()
	if err != nil {
		return nil, err
	}
	return rs.CreateRoom(ctx, a.Room, RoomOptions{MaxParticipants: a.MaxParticipants, Metadata: a.Metadata, EmptyTimeout: time.Duration(a.EmptyTimeout) * time.Second})
}

type closeRoom struct {
	Room   string `json:"room"`
	Reason string `json:"reason,omitempty"`
}

func (a *closeRoom) roomName() string { return a.Room }
func (a *closeRoom) validate() error  { return checkName("room", a.Room) }
func (a *closeRoom) run(ctx context.Context, s *Server) (any, error) {
	rs, err := s.rooms()
	if err != nil {
		return nil, err
	}
	reason := a.Reason
	if reason == "" {
		reason = "room closed"
	}
	if err := rs.CloseRoom(ctx, a.Room, reason); err != nil {
		return nil, err
	}
	return map[string]any{"closed": a.Room}, nil
}

type listParticipants struct {
	Room string `json:"room"`
}

func (a *listParticipants) roomName() string { return a.Room }
func (a *listParticipants) validate() error  { return checkName("room", a.Room) }
func (a *listParticipants) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	list, err := ps.ListParticipants(ctx, a.Room)
	if list == nil {
		list = []Participant{}
	}
	return map[string]any{"participants": list}, err
}

type getParticipant struct {
	Room        string `json:"room"`
	Participant string `json:"participant"`
}

func (a *getParticipant) roomName() string { return a.Room }
func (a *getParticipant) validate() error  { return checkPair(a.Room, a.Participant) }
func (a *getParticipant) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	return ps.GetParticipant(ctx, a.Room, a.Participant)
}

func checkPair(room, participant string) error {
	if err := checkName("room", room); err != nil {
		return err
	}
	return checkName("participant", participant)
}

type removeParticipant struct {
	Room        string `json:"room"`
	Participant string `json:"participant"`
	Reason      string `json:"reason,omitempty"`
}

func (a *removeParticipant) roomName() string { return a.Room }
func (a *removeParticipant) validate() error  { return checkPair(a.Room, a.Participant) }
func (a *removeParticipant) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	reason := a.Reason
	if reason == "" {
		reason = "removed"
	}
	if err := ps.RemoveParticipant(ctx, a.Room, a.Participant, reason); err != nil {
		return nil, err
	}
	return map[string]any{"removed": a.Participant}, nil
}

type updateParticipant struct {
	Room           string `json:"room"`
	Participant    string `json:"participant"`
	CanPublish     *bool  `json:"can_publish,omitempty"`
	CanSubscribe   *bool  `json:"can_subscribe,omitempty"`
	CanPublishData *bool  `json:"can_publish_data,omitempty"`
}

func (a *updateParticipant) roomName() string { return a.Room }
func (a *updateParticipant) validate() error {
	if err := checkPair(a.Room, a.Participant); err != nil {
		return err
	}
	if a.CanPublish == nil && a.CanSubscribe == nil && a.CanPublishData == nil {
		return core.Errorf(core.CodeBadRequest, "set at least one of can_publish, can_subscribe, can_publish_data")
	}
	return nil
}
func (a *updateParticipant) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	cur, err := ps.GetParticipant(ctx, a.Room, a.Participant)
	if err != nil {
		return nil, err
	}
	g := cur.Grants
	for _, f := range []struct {
		v   *bool
		dst *bool
	}{{a.CanPublish, &g.CanPublish}, {a.CanSubscribe, &g.CanSubscribe}, {a.CanPublishData, &g.CanPublishData}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return ps.UpdateGrants(ctx, a.Room, a.Participant, g)
}

type muteTrack struct {
	Room        string `json:"room"`
	Participant string `json:"participant"`
	Track       string `json:"track"`
	Muted       *bool  `json:"muted"`
}

func (a *muteTrack) roomName() string { return a.Room }
func (a *muteTrack) validate() error {
	if err := checkPair(a.Room, a.Participant); err != nil {
		return err
	}
	if err := checkName("track", a.Track); err != nil {
		return err
	}
	if a.Muted == nil {
		return core.Errorf(core.CodeBadRequest, "muted (true or false) is required")
	}
	return nil
}
func (a *muteTrack) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	if err := ps.MuteTrack(ctx, a.Room, a.Participant, a.Track, *a.Muted); err != nil {
		return nil, err
	}
	return map[string]any{"track": a.Track, "muted": *a.Muted}, nil
}

type sendData struct {
	Room    string          `json:"room"`
	To      []string        `json:"to,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

func (a *sendData) roomName() string { return a.Room }
func (a *sendData) validate() error {
	if err := checkName("room", a.Room); err != nil {
		return err
	}
	if len(a.Payload) == 0 || string(a.Payload) == "null" {
		return core.Errorf(core.CodeBadRequest, "payload is required")
	}
	if len(a.To) > 1000 {
		return core.Errorf(core.CodeBadRequest, "to names more than 1000 participants")
	}
	for _, id := range a.To {
		if err := checkName("to[]", id); err != nil {
			return err
		}
	}
	return nil
}
func (a *sendData) run(ctx context.Context, s *Server) (any, error) {
	ps, err := s.participants()
	if err != nil {
		return nil, err
	}
	n, err := ps.SendData(ctx, a.Room, a.To, a.Payload)
	if err != nil {
		return nil, err
	}
	return map[string]any{"delivered": n}, nil
}

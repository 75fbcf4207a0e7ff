package core

import "context"

// Action is what a participant asks to do.
type Action string

// Actions a Policy decides on.
const (
	ActionJoin      Action = "join"
	ActionPublish   Action = "publish"
	ActionSubscribe Action = "subscribe"
)

// PolicyRequest describes one action for a Policy to decide.
type PolicyRequest struct {
	Action        Action
	Room          string
	ParticipantID string
	Claims        Claims
	Participants  int        // participants already in the room (join)
	Track         *TrackInfo // the track to publish or subscribe to, if any
}

// Decision is a Policy's answer. The zero Decision denies.
type Decision struct {
	Allow      bool
	Code       Code   // the error code the client sees on deny; CodeForbidden if empty
	Reason     string // shown to the client on deny
	MaxBitrate int    // bits per second the participant may publish; 0 = no limit
	Metadata   string // replaces the participant's metadata when non-empty
	// Grants, on an allowed join, narrow what the token grants: a right
	// stays only if both the token and the policy give it. Nil keeps the
	// token's grants.
	Grants *Grants
}

// Narrow returns the rights both g and o give.
func (g Grants) Narrow(o Grants) Grants {
	return Grants{
		CanPublish:     g.CanPublish && o.CanPublish,
		CanSubscribe:   g.CanSubscribe && o.CanSubscribe,
		CanPublishData: g.CanPublishData && o.CanPublishData,
	}
}

// Policy decides whether a participant may join, publish or subscribe.
//
// Decide runs on the control plane, never per packet, and must be safe for
// concurrent use. An error means the policy could not decide; callers fail
// closed and deny.
type Policy interface {
	Decide(ctx context.Context, req PolicyRequest) (Decision, error)
}

// AllowAll is the Policy that allows every action the token grants.
type AllowAll struct{}

// Decide implements Policy.
func (AllowAll) Decide(context.Context, PolicyRequest) (Decision, error) {
	return Decision{Allow: true}, nil
}

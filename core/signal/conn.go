package signal

import "context"

// Conn is one client connection as a transport delivers it: a sequence of
// whole messages each way.
//
// Read is called from one goroutine (the session loop), Write from another
// (the session's writer); Close may be called from any goroutine, more than
// once, and unblocks both. Read returns an error matching
// core.ErrMessageTooLarge when a message exceeds the limit the transport was
// configured with; the connection is then unusable.
type Conn interface {
	Read(ctx context.Context) ([]byte, error)
	Write(ctx context.Context, msg []byte) error
	Close(reason string) error
}

package webhook

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/parleyhq/parley/core"
)

// The FileStore's log is a sequence of records, each framed as
//
//	length  uint32, little endian: bytes of payload
//	crc     uint32, little endian: CRC-32C of payload
//	payload JSON of a record
//
// A record is appended and fsynced before the change it describes is
// visible, so after a crash only the last record can be incomplete.

// Record operations.
const (
	opEvent   = "event"   // a presence event joined the journal
	opEnqueue = "enqueue" // cursor moved, webhooks queued (and some dead: outbox full)
	opSettle  = "settle"  // acknowledged webhooks left, dead ones moved to the dead list
	opClear   = "clear"   // the operator removed webhooks
	opRetry   = "retry"   // the operator moved dead webhooks back to the outbox
	opKeys    = "keys"    // the signing key set changed
)

// record is one state change. Every value it needs (sequence numbers,
// times, keys) is in it, so applying it again gives the same state.
type record struct {
	LSN   uint64             `json:"lsn"`
	Op    string             `json:"op"`
	Event *core.JournalEntry `json:"event,omitempty"`
	From  uint64             `json:"from,omitempty"`
	To    uint64             `json:"to,omitempty"`
	Items []core.Webhook     `json:"items,omitempty"`
	Dead  []core.Webhook     `json:"dead,omitempty"`
	IDs   []string           `json:"ids,omitempty"`
	Keys  []core.SigningKey  `json:"keys,omitempty"`
	Flag  bool               `json:"flag,omitempty"` // clear: the dead list rather than the outbox
}

const (
	frameHeader = 8
	// maxRecord bounds one record's payload; a larger length is corruption.
	maxRecord = 256 << 20
)

var (
	// errTorn means the bytes end inside a record: a write cut short.
	errTorn = errors.New("incomplete record")
	// errCorrupt means the bytes are not a valid record.
	errCorrupt = errors.New("corrupt record")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord frames rec.
func encodeRecord(rec *record) ([]byte, error) {
	payload, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", rec.Op, err)
	}
	if len(payload) > maxRecord {
		return nil, fmt.Errorf("encode %s record: %d bytes is over the %d limit", rec.Op, len(payload), maxRecord)
	}
	b := make([]byte, frameHeader, frameHeader+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	return append(b, payload...), nil
}

// decodeRecord reads the record at the start of b and returns it with the
// number of bytes it took. errTorn: b ends inside the record; errCorrupt:
// a bad length, checksum, JSON or operation.
func decodeRecord(b []byte) (record, int, error) {
	var rec record
	if len(b) < frameHeader {
		return rec, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 || n > maxRecord {
		return rec, 0, fmt.Errorf("%w: length %d", errCorrupt, n)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return rec, 0, errTorn
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return rec, 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if err := json.Unmarshal(payload, &rec); err != nil {
		return rec, 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if err := rec.check(); err != nil {
		return rec, 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return rec, frameHeader + int(n), nil
}

// check rejects records that no writer produces.
func (r *record) check() error {
	if r.LSN == 0 {
		return errors.New("lsn 0")
	}
	switch r.Op {
	case opEvent:
		if r.Event == nil || r.Event.Seq == 0 {
			return errors.New("event record without an event")
		}
	case opEnqueue:
		if r.To < r.From {
			return fmt.Errorf("enqueue moves the cursor back, %d to %d", r.From, r.To)
		}
	case opSettle, opClear, opRetry, opKeys:
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	for _, w := range append(r.Items, r.Dead...) {
		if w.ID == "" {
			return errors.New("webhook without an id")
		}
	}
	return nil
}

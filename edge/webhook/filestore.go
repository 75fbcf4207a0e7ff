package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"golang.org/x/sys/unix"
)

// File names in a FileStore's directory.
const (
	logName  = "webhooks.log"
	snapName = "webhooks.snap"
	lockName = "webhooks.lock"
)

// Bounds of a FileStore.
const (
	// MaxPending is how many webhooks the outbox holds; webhooks enqueued
	// beyond it go to the dead-letter list with ErrOutboxFull.
	MaxPending = 100000
	// MaxDead is how many dead webhooks are kept; the oldest go first.
	MaxDead = 10000
	// MaxJournal is how many unprocessed presence events are kept; the
	// oldest go first (the processor reports them as dropped).
	MaxJournal = 100000
	// compactAt is the log size that triggers a compaction.
	compactAt = 8 << 20
)

// FileStore is the durable Store of a single node: presence journal,
// webhook cursor, outbox, dead-letter list and signing keys in a data
// directory, as an append-only log of records fsynced before each call
// returns, replayed at open and compacted into a snapshot as it grows.
// Only one FileStore opens a directory at a time (an flock guards it).
// Its methods are safe for concurrent use.
type FileStore struct {
	dir string
	log *slog.Logger

	mu        sync.Mutex
	f         *os.File // the log, O_APPEND; nil once closed
	lock      *os.File
	size      int64
	compactAt int64
	// bounds: MaxPending, MaxDead, MaxJournal (smaller in tests)
	maxPending, maxDead, maxJournal int
	st                              fileState
	pendingID                       map[string]bool
	deadID                          map[string]bool
	onCommit                        func()

	// Group commit of presence events: callers arriving while one of them
	// writes gather into the next batch, which that writer commits too.
	gmu     sync.Mutex
	gather  *eventBatch
	leading bool
}

// fileState is what the log describes, and what a snapshot holds.
type fileState struct {
	StoreID   string              `json:"store_id"` // makes event ids unique across stores
	LSN       uint64              `json:"lsn"`      // last record applied
	LastEvent uint64              `json:"last_event"`
	Journal   []core.JournalEntry `json:"journal"` // unprocessed events, Seq order, no gaps
	Cursor    uint64              `json:"cursor"`
	LastSeq   uint64              `json:"last_seq"` // last webhook Seq assigned
	Pending   []core.Webhook      `json:"pending"`  // Seq order
	Dead      []core.Webhook      `json:"dead"`     // oldest first
	Keys      []core.SigningKey   `json:"keys"`     // active first
}

// OpenFileStore opens (creating it if needed) the store in dir, replaying
// its snapshot and log. A record cut short by a crash at the end of the log
// is dropped with a warning (its bytes are kept beside the log, in
// webhooks.log.corrupt-*). log may be nil.
func OpenFileStore(dir string, log *slog.Logger) (*FileStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("webhook store: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("webhook store: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("webhook store: %s is in use by another process: %w", dir, err)
	}
	s := &FileStore{dir: dir, log: log, lock: lock, compactAt: compactAt,
		maxPending: MaxPending, maxDead: MaxDead, maxJournal: MaxJournal}
	if err := s.open(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("webhook store %s: %w", dir, err)
	}
	return s, nil
}

func (s *FileStore) open() error {
	if b, err := os.ReadFile(filepath.Join(s.dir, snapName)); err == nil {
		if err := json.Unmarshal(b, &s.st); err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s.index()
	f, err := os.OpenFile(filepath.Join(s.dir, logName), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := s.replay(f); err != nil {
		_ = f.Close()
		return err
	}
	s.f = f
	if s.st.StoreID == "" {
		// A new store: its id must be durable before any event id uses it.
		s.st.StoreID = core.NewID("")
		if err := s.compact(); err != nil {
			_ = f.Close()
			return err
		}
	}
	return nil
}

// replay applies the log's records newer than the snapshot, and cuts the
// log at the first record that does not decode.
func (s *FileStore) replay(f *os.File) error {
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	off, n := 0, 0
	for off < len(b) {
		rec, size, err := decodeRecord(b[off:])
		if err != nil {
			return s.cut(f, b, off, err)
		}
		off += size
		if rec.LSN <= s.st.LSN {
			continue // already in the snapshot
		}
		s.apply(&rec)
		n++
	}
	s.size = int64(off)
	if n > 0 {
		s.log.Info("webhook store replayed", "dir", s.dir, "records", n, "pending", len(s.st.Pending), "dead", len(s.st.Dead), "journal", len(s.st.Journal))
	}
	return nil
}

// cut keeps the log's bytes from off on in a side file, then truncates the
// log at off so that appends follow the last good record.
func (s *FileStore) cut(f *os.File, b []byte, off int, cause error) error {
	side := filepath.Join(s.dir, logName+".corrupt-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.WriteFile(side, b[off:], 0o600); err != nil {
		return fmt.Errorf("save the unreadable end of the log: %w", err)
	}
	if err := f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("truncate log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	s.size = int64(off)
	s.log.Warn("webhook store log ends in an unreadable record (a write cut short?); ignored it",
		"dir", s.dir, "offset", off, "bytes", len(b)-off, "err", cause, "kept_in", side)
	return nil
}

// commit appends recs durably (one write, one fsync), then applies them.
// Callers hold s.mu.
func (s *FileStore) commit(recs ...*record) error {
	if s.f == nil {
		return ErrClosed
	}
	var b []byte
	for i, rec := range recs {
		rec.LSN = s.st.LSN + 1 + uint64(i)
		rb, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		b = append(b, rb...)
	}
	if _, err := s.f.Write(b); err != nil {
		s.repair()
		return fmt.Errorf("webhook store: write log: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.repair()
		return fmt.Errorf("webhook store: sync log: %w", err)
	}
	s.size += int64(len(b))
	for _, rec := range recs {
		s.apply(rec)
	}
	if s.size >= s.compactAt {
		if err := s.compact(); err != nil {
			s.log.Warn("webhook store compaction failed; the log keeps growing", "dir", s.dir, "err", err)
		}
	}
	return nil
}

// repair cuts off a partly written record so later appends stay readable.
func (s *FileStore) repair() {
	if err := s.f.Truncate(s.size); err != nil {
		s.log.Error("webhook store: cannot truncate the log after a failed write", "dir", s.dir, "err", err)
	}
}

// compact writes the state to the snapshot (temp file, fsync, rename,
// fsync of the directory), then empties the log. Callers hold s.mu.
func (s *FileStore) compact() error {
	b, err := json.Marshal(&s.st)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	tmp := filepath.Join(s.dir, snapName+".tmp")
	if err := writeSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, snapName)); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	// Records up to st.LSN are in the snapshot; a crash before the
	// truncation only leaves records that replay skips.
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate log: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	s.size = 0
	return nil
}

func writeSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync snapshot: %w", err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// Close closes the store; later writes fail with ErrClosed. Nothing is lost:
// every call that returned had its change on disk.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// Dir returns the store's directory.
func (s *FileStore) Dir() string { return s.dir }

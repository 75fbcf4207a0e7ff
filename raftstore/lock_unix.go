//go:build unix

package raftstore

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dirLock holds an exclusive flock on DataDir/LOCK while a Store is open,
// so that two Stores never share a log. The kernel drops it when the
// process dies.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrDataDirLocked, dir, err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) unlock() error { return l.f.Close() }

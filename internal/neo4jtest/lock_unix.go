//go:build unix

package neo4jtest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockGraph takes an exclusive flock on the file at path, calling waiting first if another holder
// has it. flock locks belong to the open file, not the process, so two tests of one process
// exclude each other as two processes do; the kernel drops the lock if the process dies.
func lockGraph(path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	fd := int(f.Fd())
	err = flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		waiting()
		err = flock(fd, syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the only descriptor releases the lock
}

func flock(fd, how int) error {
	for {
		if err := syscall.Flock(fd, how); err != syscall.EINTR {
			return err
		}
	}
}

package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// The points of an atomic write a hook sees (WriteAtomic).
const (
	// BeforeTemp: nothing written yet.
	BeforeTemp = "before-temp"
	// BeforeRename: the temporary is complete and synced, not yet renamed.
	BeforeRename = "before-rename"
	// AfterRename: the new file is in place.
	AfterRename = "after-rename"
)

// temps are the temporaries of atomic writes in flight, so that
// AbortWrites can remove them before an immediate exit.
var temps struct {
	sync.Mutex
	files   map[string]bool
	aborted bool
}

// WriteAtomic writes path through write, atomically: the bytes go to a
// temporary beside path (".name.tmpNNNN"), which is synced, made 0644 and
// renamed over path, and the directory is synced so the rename is durable.
// path holds its old or its new content whatever happens; on an error the
// temporary is removed. hook (nil: none) is called at BeforeTemp,
// BeforeRename and AfterRename; an error from it aborts the write (tests
// interrupt writes there). Every file this package writes goes through it.
func WriteAtomic(path string, write func(w io.Writer) error, hook func(point string) error) (err error) {
	if hook == nil {
		hook = func(string) error { return nil }
	}
	if err := hook(BeforeTemp); err != nil {
		return err
	}
	tmp, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
		dropTemp(tmp.Name())
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = hook(BeforeRename); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		// Some filesystems refuse fsync on a directory; the data is already
		// safe, so that is not worth failing the write for.
		_ = d.Sync()
		d.Close()
	}
	return hook(AfterRename)
}

// AbortWrites removes the temporary of every atomic write in flight and
// makes later writes fail, so that a process can exit at once (a second
// SIGINT) without leaving a *.tmp file behind.
func AbortWrites() {
	temps.Lock() // held until the process exits: no new temporary after this
	temps.aborted = true
	for n := range temps.files {
		os.Remove(n)
	}
}

// createTemp creates the temporary of path, registered for AbortWrites.
func createTemp(path string) (*os.File, error) {
	temps.Lock()
	defer temps.Unlock()
	if temps.aborted {
		return nil, errors.New("process exiting")
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, err
	}
	if temps.files == nil {
		temps.files = map[string]bool{}
	}
	temps.files[f.Name()] = true
	return f, nil
}

// dropTemp forgets a temporary that was renamed or removed.
func dropTemp(name string) {
	temps.Lock()
	delete(temps.files, name)
	temps.Unlock()
}

package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files of a run directory (vision and language-model runs alike).
const (
	// CheckpointFile is the run's training checkpoint.
	CheckpointFile = "ckpt.safetensors"
	// LogFile is the run's JSON-lines curve log.
	LogFile = "log.jsonl"
	// PlotFile is a vision run's curve plot.
	PlotFile = "curves.png"
	// LockFile is the lock a running training holds (flock) for its lifetime.
	LockFile = ".slab.lock"
)

// ErrLocked is wrapped by the error of Claim when another process trains
// into the same directory.
var ErrLocked = errors.New("another slab process holds it")

// ErrRunExists is wrapped by the error of Claim when the directory holds a
// run and neither Resume nor Force was asked for.
var ErrRunExists = errors.New("already holds a run")

// ClaimMode says what a training may do with a run directory that already
// holds a run.
type ClaimMode int

const (
	// Fresh refuses a directory that holds a run.
	Fresh ClaimMode = iota
	// Resume continues the run the directory holds (or starts one in an
	// empty directory from a checkpoint elsewhere).
	Resume
	// Force replaces the run the directory holds.
	Force
)

// Claim is a run directory locked for one training: it exists, is
// writable, no other slab process trains into it, and it holds no run the
// training was not allowed to touch. The lock (flock on .slab.lock) lasts
// until Release or the end of the process, so a killed run leaves none.
type Claim struct {
	Dir  string
	Mode ClaimMode
	// Existing are the run files the directory held when claimed
	// (checkpoint, log, plot); under Force they are what the run replaces.
	Existing []string
	// Stale are temporaries of a killed write that Claim removed.
	Stale []string
	lock  *os.File
	// created: the claim made the directory, so Release may remove it
	// again if the run never wrote anything into it.
	created bool
}

// ClaimRunDir creates dir if needed and claims it for a training run in
// the given mode. resume is the checkpoint a Resume continues ("" if none):
// a directory holding another run than that one is refused unless Force.
// It reads and writes no training data, so a command calls it before
// loading anything; errors name dir.
func ClaimRunDir(dir string, mode ClaimMode, resume string) (*Claim, error) {
	if dir == "" {
		return nil, errors.New("no run directory given")
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a run directory", dir)
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create run directory: %v", err)
	}
	// Writability first: a read-only directory must fail here, not at the
	// first checkpoint after an epoch of work.
	probe, err := os.CreateTemp(dir, ".slab-probe*")
	if err != nil {
		return nil, fmt.Errorf("%s is not writable: %v", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	lf, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %v", dir, err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%s: %w (a training into it is running; wait for it or pick another directory)", dir, ErrLocked)
		}
		return nil, fmt.Errorf("%s: lock: %v", dir, err)
	}
	c := &Claim{Dir: dir, Mode: mode, lock: lf, created: os.IsNotExist(statErr)}
	// Holding the lock, every temporary in the directory is a leftover of a
	// killed write.
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if n := e.Name(); isTemporary(n) {
				if os.Remove(filepath.Join(dir, n)) == nil {
					c.Stale = append(c.Stale, n)
				}
			}
		}
	}
	for _, n := range []string{CheckpointFile, LogFile, PlotFile} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			c.Existing = append(c.Existing, n)
		}
	}
	if !c.holdsRun() || mode == Force {
		return c, nil
	}
	ckpt := filepath.Join(dir, CheckpointFile)
	if mode == Resume && resume != "" {
		if same(resume, ckpt) {
			return c, nil
		}
		c.Release()
		return nil, fmt.Errorf("%s %w (%s), not the one --resume %s continues: pick an empty directory, or --force to replace it", dir, ErrRunExists, strings.Join(c.Existing, ", "), resume)
	}
	if mode == Resume {
		return c, nil
	}
	c.Release()
	return nil, fmt.Errorf("%s %w (%s): continue it with --resume %s, or replace it with --force", dir, ErrRunExists, strings.Join(c.Existing, ", "), ckpt)
}

// holdsRun: a checkpoint or a curve log makes a run (a plot alone is a
// leftover anyone may overwrite).
func (c *Claim) holdsRun() bool { return c.has(CheckpointFile) || c.has(LogFile) }

// has reports whether the directory held run file n when claimed.
func (c *Claim) has(n string) bool {
	for _, e := range c.Existing {
		if e == n {
			return true
		}
	}
	return false
}

// Replacing lists the files a Force claim replaces (nil otherwise).
func (c *Claim) Replacing() []string {
	if c.Mode != Force || !c.holdsRun() {
		return nil
	}
	return c.Existing
}

// Clear removes the run files of a Force claim (the run it replaces); the
// caller calls it once everything before the first step has succeeded.
func (c *Claim) Clear() error {
	for _, n := range c.Replacing() {
		if err := os.Remove(filepath.Join(c.Dir, n)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	c.Existing = nil
	return nil
}

// Release gives up the lock. The lock file stays (removing it would let a
// process that has opened it and a new one lock two different files),
// except in a directory the claim created and the run left empty: a
// training refused after the claim (a model too big for memory, a
// sequence above the context) then leaves nothing behind. Still holding
// the lock, it removes the lock file and the directory; a process that
// opened the lock file meanwhile finds its directory gone and fails
// writing, never training beside another.
func (c *Claim) Release() {
	if c == nil || c.lock == nil {
		return
	}
	if c.created && c.untouched() {
		os.Remove(filepath.Join(c.Dir, LockFile))
		os.Remove(c.Dir)
	}
	c.lock.Close()
	c.lock = nil
}

// untouched reports whether the directory holds nothing but the lock file
// and empty files the run opened without writing (a curve log).
func (c *Claim) untouched() bool {
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() == LockFile {
			continue
		}
		info, err := e.Info()
		if err != nil || e.IsDir() || info.Size() != 0 {
			return false
		}
	}
	for _, e := range ents {
		if e.Name() != LockFile {
			os.Remove(filepath.Join(c.Dir, e.Name()))
		}
	}
	return true
}

// same reports whether a and b are one file (b may not exist).
func same(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

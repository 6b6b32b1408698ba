package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/slabml/slab/checkpoint"
)

// ErrInterrupted is wrapped by the error a training returns when its
// context was cancelled (a signal through NotifySignals, or the caller):
// it stopped at a step boundary with its checkpoint and log consistent.
var ErrInterrupted = errors.New("interrupted")

// Interrupted is the error of a training stopped by its context. Signal is
// set when the stop came from NotifySignals; Checkpoint is the file that
// holds the run up to Step ("" if nothing was saved).
type Interrupted struct {
	Signal     os.Signal
	Step       int64
	Checkpoint string
}

func (e *Interrupted) Error() string {
	by := ""
	if e.Signal != nil {
		by = " by " + signalName(e.Signal)
	}
	if e.Checkpoint == "" {
		return fmt.Sprintf("interrupted%s at step %d; nothing saved", by, e.Step)
	}
	return fmt.Sprintf("interrupted%s at step %d; %s holds the run up to it: continue with --resume %s", by, e.Step, e.Checkpoint, e.Checkpoint)
}

// Unwrap makes errors.Is(err, ErrInterrupted) hold.
func (e *Interrupted) Unwrap() error { return ErrInterrupted }

// ExitCode is the shell's code for a process ended by the signal: 128 +
// its number (130 for SIGINT, 143 for SIGTERM), 1 without a signal.
func (e *Interrupted) ExitCode() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// signalCause is the context cause NotifySignals cancels with.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return signalName(c.sig) }

// interrupted returns the error of a training stopped by ctx at step, or
// nil while ctx runs.
func interrupted(ctx context.Context, step int64, ckpt string) error {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	e := &Interrupted{Step: step, Checkpoint: ckpt}
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		e.Signal = sc.sig
	}
	return e
}

// NotifySignals returns a context that the first SIGINT or SIGTERM
// cancels, so that a training given it stops at the next step boundary
// with its checkpoint and log consistent, and returns an *Interrupted. A
// second signal while it stops removes the temporaries of any checkpoint
// being written and exits the process at once with 128 + the signal's
// number. Notes (what happens) go to w; stop restores the default
// handling.
func NotifySignals(parent context.Context, w io.Writer) (ctx context.Context, stop func()) {
	if w == nil {
		w = io.Discard
	}
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(w, "slab: %s: stopping at the next step with checkpoint and log consistent (send it again to quit at once)\n", signalName(s))
			cancel(signalCause{s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(w, "slab: %s again: quitting now\n", signalName(s))
			Quit(s)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel(nil)
		})
	}
}

// Quit ends the process at once because of signal s: it removes the
// temporaries of writes in flight (AbortWrites) and exits with 128 + the
// signal's number (130 for SIGINT, 143 for SIGTERM).
func Quit(s os.Signal) {
	AbortWrites()
	code := 1
	if n, ok := s.(syscall.Signal); ok {
		code = 128 + int(n)
	}
	os.Exit(code)
}

// AbortWrites removes the temporary of every checkpoint or log write in
// flight and makes later writes fail, so that the process can exit at once
// without leaving a *.tmp file behind (checkpoint.AbortWrites: every
// atomic write of the process is covered).
func AbortWrites() { checkpoint.AbortWrites() }

// isTemporary matches the temporaries of a run directory's files, as
// checkpoint.WriteAtomic names them (and log.jsonl.tmp, the name
// earlier versions used).
func isTemporary(name string) bool {
	for _, f := range []string{CheckpointFile, LogFile} {
		if strings.HasPrefix(name, "."+f+".tmp") {
			return true
		}
	}
	return name == LogFile+".tmp"
}

// writeAtomic is checkpoint.WriteAtomic with the training's test hook
// seeing the points in between.
func writeAtomic(path string, write func(w io.Writer) error) error {
	return checkpoint.WriteAtomic(path, write, hook)
}

// writeCheckpoint is checkpoint.Write through writeAtomic.
func writeCheckpoint(path string, f *checkpoint.File) error {
	return writeAtomic(path, func(w io.Writer) error { return checkpoint.Encode(w, f) })
}

// Points of a training where tests inject signals or crashes (SetTestHook).
const (
	HookMidEpoch     = "mid-epoch"             // a step boundary inside an epoch
	HookBeforeLog    = "before-log"            // before the log append of a save
	HookBeforeTemp   = checkpoint.BeforeTemp   // before the checkpoint's temporary is created
	HookBeforeRename = checkpoint.BeforeRename // temporary complete, not yet renamed
	HookAfterRename  = checkpoint.AfterRename  // checkpoint in place
	HookBeforeRecal  = "before-recal"          // finished training, before re-calibration
)

var testHook func(point string) error

// SetTestHook installs f to be called at the named points of every
// training in the process (nil removes it); an error from f aborts the
// training there as a crash would. For tests only.
func SetTestHook(f func(point string) error) { testHook = f }

func hook(point string) error {
	if testHook == nil {
		return nil
	}
	return testHook(point)
}

// Package progress shows a training run's progress on a terminal (a
// progress bar per phase) or as plain log lines: kept apart from package
// train so that a library user of the trainer links no terminal packages.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/slabml/slab/train"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal, to choose between a progress
// bar and plain log lines.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewReporter returns a progress bar on w when bar is true (w is a
// terminal) and plain log lines otherwise; both print one line per epoch.
func NewReporter(w io.Writer, bar bool) train.Reporter {
	if bar {
		return &barReporter{w: w}
	}
	return &lineReporter{w: w}
}

// epochLine is the per-epoch summary both reporters print.
func epochLine(r train.EpochRecord) string {
	return fmt.Sprintf("epoch %d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lambda %.3f | %.0f images/s, %.1f s",
		r.Epoch, r.TrainLoss, 100*r.TrainAcc, r.TestLoss, 100*r.TestAcc, r.Lambda, r.ImgPerSec, r.Seconds)
}

func stepDesc(phase string, rec *train.StepRecord, ips float64) string {
	if rec == nil {
		return phase
	}
	return fmt.Sprintf("%s loss %.3f acc %5.1f%% λ %.3f %4.0f img/s", phase, rec.Loss, 100*rec.Acc, rec.Lambda, ips)
}

// barReporter draws a progressbar/v3 bar per phase.
type barReporter struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	phase string
}

// Begin replaces the previous phase's bar with a new one.
func (b *barReporter) Begin(phase string, total int) {
	b.finish()
	b.phase = phase
	b.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(phase),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(25),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
}

// Step moves the bar and, in training, shows the step's figures.
func (b *barReporter) Step(done int, rec *train.StepRecord, ips float64) {
	if b.bar == nil {
		return
	}
	if rec != nil {
		b.bar.Describe(stepDesc(b.phase, rec, ips))
	}
	_ = b.bar.Set(done)
}

func (b *barReporter) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		b.bar = nil
	}
}

// Epoch closes the bar and prints the epoch summary.
func (b *barReporter) Epoch(r train.EpochRecord) {
	b.finish()
	fmt.Fprintln(b.w, epochLine(r))
}

// lineReporter prints about ten progress lines per training epoch.
type lineReporter struct {
	w     io.Writer
	phase string
	total int
	every int
}

// Begin starts a phase; lines are printed every tenth of it.
func (l *lineReporter) Begin(phase string, total int) {
	l.phase, l.total, l.every = phase, total, max(1, total/10)
}

// Step prints a line at every tenth of a training phase.
func (l *lineReporter) Step(done int, rec *train.StepRecord, ips float64) {
	if rec == nil || (done%l.every != 0 && done != l.total) {
		return
	}
	fmt.Fprintf(l.w, "%s step %d/%d loss %.4f acc %.1f%% lambda %.4f lr %.3g %.0f images/s\n",
		l.phase, done, l.total, rec.Loss, 100*rec.Acc, rec.Lambda, rec.LR, ips)
}

// Epoch prints the epoch summary.
func (l *lineReporter) Epoch(r train.EpochRecord) { fmt.Fprintln(l.w, epochLine(r)) }

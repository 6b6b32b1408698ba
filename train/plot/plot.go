// Package plot draws a training run's curves as a PNG (gonum/plot): kept
// apart from package train so that a library user of the trainer links no
// plotting packages.
package plot

import (
	"fmt"
	"os"

	"github.com/slabml/slab/train"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws the training curves as a PNG at path: training loss per
// step, test accuracy per epoch and the PRepBN lambda per step, stacked so
// their step axes line up (the accuracy curve is placed at each epoch's
// last step).
func WritePlot(path, title string, steps []train.StepRecord, epochs []train.EpochRecord) error {
	loss := make(plotter.XYs, 0, len(steps))
	lam := make(plotter.XYs, 0, len(steps))
	// Thin the per-step series to at most ~2000 points: the PNG cannot show
	// more and the file stays small.
	stride := max(1, len(steps)/2000)
	for i, s := range steps {
		if i%stride != 0 && i != len(steps)-1 {
			continue
		}
		loss = append(loss, plotter.XY{X: float64(s.Step), Y: s.Loss})
		lam = append(lam, plotter.XY{X: float64(s.Step), Y: s.Lambda})
	}
	acc := make(plotter.XYs, 0, len(epochs))
	for _, e := range epochs {
		acc = append(acc, plotter.XY{X: float64(e.Step), Y: 100 * e.TestAcc})
	}
	type panel struct {
		name, ylabel string
		xy           plotter.XYs
		points       bool
	}
	panels := []panel{
		{title + ": training loss", "loss (label-smoothed)", loss, false},
		{"test accuracy (eval mode, RepBN path)", "accuracy %", acc, true},
		{"PRepBN lambda (LayerNorm weight)", "lambda", lam, false},
	}
	var xmax float64
	if len(steps) > 0 {
		xmax = float64(steps[len(steps)-1].Step)
	}
	if len(epochs) > 0 {
		xmax = max(xmax, float64(epochs[len(epochs)-1].Step))
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.name
		p.X.Label.Text = "optimizer step"
		p.Y.Label.Text = pn.ylabel
		p.Add(plotter.NewGrid())
		// One step axis for all panels, so epochs line up vertically.
		p.X.Min, p.X.Max = 0, max(1, xmax)
		if len(pn.xy) > 0 {
			l, err := plotter.NewLine(pn.xy)
			if err != nil {
				return fmt.Errorf("plot %s: %w", pn.name, err)
			}
			p.Add(l)
			if pn.points {
				s, err := plotter.NewScatter(pn.xy)
				if err != nil {
					return fmt.Errorf("plot %s: %w", pn.name, err)
				}
				p.Add(s)
			}
		}
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(8*vg.Inch, 9*vg.Inch)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.CreateTemp(dirOf(path), ".plot*.png")
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; a curve plot is as public as the log
	// beside it.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i+1]
		}
	}
	return "."
}

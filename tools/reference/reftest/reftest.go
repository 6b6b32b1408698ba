// Package reftest loads the PyTorch reference fixtures of testdata/reference
// (written by tools/reference/reference.py) and compares slab's tensors with
// them, logging the max abs and rel difference of every tensor (llm.c's
// habit) so that a drifting kernel shows up in -v output before it fails.
//
// It is a small non-test package so that the reference tests of nn,
// models/vit and fuse share one loader and one comparison rule. It imports
// only checkpoint and tensor (never nn), so nn's internal tests can use it
// without an import cycle.
//
// The comparison rule is normwise: a tensor passes when
//
//	max_i |got_i - want_i| <= Rel * max_i |want_i| + Abs
//
// Elementwise relative error is logged but not asserted, because the
// fixtures are exact (float64) results and a float32 implementation's
// error scales with the magnitude of the operands, not of each result: a
// logit or gradient that is a small difference of large terms carries an
// absolute error of ulp(terms), which is huge relative to itself but not
// relative to the tensor.
package reftest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/tensor"
)

// Fixture is one loaded reference file.
type Fixture struct {
	Path string
	File *checkpoint.File
	// Config is the JSON object in the file's "config" metadata.
	Config map[string]any
	tb     testing.TB
}

// Dir returns testdata/reference of the module containing the working
// directory (tests run in their package directory, so it walks up to
// go.mod).
func Dir(tb testing.TB) string {
	tb.Helper()
	d, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "reference")
		}
		p := filepath.Dir(d)
		if p == d {
			tb.Fatal("reftest: no go.mod above the working directory")
		}
		d = p
	}
}

// Load reads testdata/reference/NAME.safetensors.
func Load(tb testing.TB, name string) *Fixture {
	tb.Helper()
	return LoadPath(tb, filepath.Join(Dir(tb), name+".safetensors"))
}

// LoadPath reads a fixture from an explicit path.
func LoadPath(tb testing.TB, path string) *Fixture {
	tb.Helper()
	f, err := checkpoint.Read(path)
	if err != nil {
		tb.Fatalf("reftest: %v (regenerate with /usr/bin/python3 tools/reference/reference.py)", err)
	}
	fx := &Fixture{Path: path, File: f, Config: map[string]any{}, tb: tb}
	if c, ok := f.Metadata["config"]; ok {
		if err := json.Unmarshal([]byte(c), &fx.Config); err != nil {
			tb.Fatalf("reftest: %s: config metadata: %v", path, err)
		}
	}
	return fx
}

// Has reports whether the fixture holds name.
func (f *Fixture) Has(name string) bool { _, ok := f.File.Tensors[name]; return ok }

// T returns tensor name (float32; integer entries converted).
func (f *Fixture) T(name string) *tensor.Tensor {
	f.tb.Helper()
	t, err := f.File.Tensor(name)
	if err != nil {
		f.tb.Fatalf("%s: %v", filepath.Base(f.Path), err)
	}
	return t
}

// Ints returns integer tensor name.
func (f *Fixture) Ints(name string) []int64 {
	f.tb.Helper()
	e, ok := f.File.Tensors[name]
	if !ok {
		f.tb.Fatalf("%s: no tensor %q", filepath.Base(f.Path), name)
	}
	return e.Int64s()
}

// Labels returns integer tensor name as []int.
func (f *Fixture) Labels(name string) []int {
	v := f.Ints(name)
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// Scalar returns the single value of tensor name.
func (f *Fixture) Scalar(name string) float64 {
	f.tb.Helper()
	t := f.T(name)
	if t.Size() != 1 {
		f.tb.Fatalf("%s: %q has %d values, want 1", filepath.Base(f.Path), name, t.Size())
	}
	return float64(t.Data[0])
}

// Names returns the sorted tensor names that start with prefix, prefix
// removed.
func (f *Fixture) Names(prefix string) []string {
	var out []string
	for n := range f.File.Tensors {
		if rest, ok := strings.CutPrefix(n, prefix); ok {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

// Num returns config value key as a number.
func (f *Fixture) Num(key string) float64 {
	f.tb.Helper()
	v, ok := f.Config[key].(float64)
	if !ok {
		f.tb.Fatalf("%s: config has no number %q", filepath.Base(f.Path), key)
	}
	return v
}

// Tol is a normwise tolerance: max|d| <= Rel*max|want| + Abs.
type Tol struct{ Rel, Abs float64 }

// Diff is the outcome of one comparison.
type Diff struct {
	MaxAbs, MaxRel, Scale float64
	Worst                 int
}

// Measure compares got with want without asserting.
func Measure(got, want []float32) (Diff, error) {
	if len(got) != len(want) {
		return Diff{}, fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	var d Diff
	d.Worst = -1
	for i := range got {
		w := float64(want[i])
		e := math.Abs(float64(got[i]) - w)
		if math.IsNaN(e) {
			return d, fmt.Errorf("[%d] = %g, want %g", i, got[i], want[i])
		}
		d.Scale = math.Max(d.Scale, math.Abs(w))
		if e > d.MaxAbs {
			d.MaxAbs, d.Worst = e, i
		}
		if w != 0 {
			d.MaxRel = math.Max(d.MaxRel, e/math.Abs(w))
		}
	}
	return d, nil
}

// Close compares got with want, logs the max abs and rel diff and fails the
// test (without stopping it, so every tensor is reported) when the normwise
// tolerance is exceeded. It returns the diff.
func Close(tb testing.TB, name string, got, want []float32, tol Tol) Diff {
	tb.Helper()
	d, err := Measure(got, want)
	if err != nil {
		tb.Errorf("%s: %v", name, err)
		return d
	}
	lim := tol.Rel*d.Scale + tol.Abs
	tb.Logf("%-44s max abs %.3g  max rel %.3g  (|want| <= %.3g, %d values)", name, d.MaxAbs, d.MaxRel, d.Scale, len(got))
	if d.MaxAbs > lim {
		tb.Errorf("%s: max abs diff %.3g at [%d] (got %g, want %g) exceeds %.3g = %.0e*%.3g + %.0e",
			name, d.MaxAbs, d.Worst, got[d.Worst], want[d.Worst], lim, tol.Rel, d.Scale, tol.Abs)
	}
	return d
}

// CloseT is Close for tensors, also checking the number of values.
func CloseT(tb testing.TB, name string, got, want *tensor.Tensor, tol Tol) Diff {
	tb.Helper()
	if got == nil {
		tb.Errorf("%s: nil tensor", name)
		return Diff{}
	}
	if got.Size() != want.Size() {
		tb.Errorf("%s: shape %v, want %v", name, got.Shape, want.Shape)
		return Diff{}
	}
	return Close(tb, name, got.Data, want.Data, tol)
}

// F32 rounds float64 values for Close.
func F32(v ...float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

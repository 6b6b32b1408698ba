package nn

import (
	"math"
	"testing"
)

// numGrad returns the central-difference gradient of f at x, in float64.
// Tests pair it with a float64 re-implementation of a layer's forward pass
// written from the equations, so that both our float32 forward and our
// analytic backward are checked against an independent computation.
func numGrad(f func(x []float64) float64, x []float64, eps float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + eps
		fp := f(x)
		x[i] = old - eps
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * eps)
	}
	return g
}

// assertClose compares got with want elementwise: |got-want| <= atol +
// rtol*|want|. It logs the max abs and rel diff (llm.c's habit) and fails
// on the first violation.
func assertClose(t *testing.T, name string, got []float32, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	maxAbs, maxRel := 0.0, 0.0
	bad := -1
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		maxAbs = math.Max(maxAbs, d)
		if w := math.Abs(want[i]); w > 0 {
			maxRel = math.Max(maxRel, d/w)
		}
		if (d > atol+rtol*math.Abs(want[i]) || math.IsNaN(float64(got[i]))) && bad < 0 {
			bad = i
		}
	}
	t.Logf("%s: max abs diff %.3g, max rel diff %.3g (%d values)", name, maxAbs, maxRel, len(got))
	if bad >= 0 {
		t.Fatalf("%s[%d] = %g, want %g (rtol %g, atol %g)", name, bad, got[bad], want[bad], rtol, atol)
	}
}

package nn

import (
	"fmt"
	"math"
	"testing"
)

func blCE64(logits []float64, labels []int, k int, s float64) float64 {
	rows := len(labels)
	var total float64
	for r := 0; r < rows; r++ {
		x := logits[r*k : r*k+k]
		var z float64
		for _, v := range x {
			z += math.Exp(v)
		}
		lz := math.Log(z)
		var smooth float64
		for _, v := range x {
			smooth += lz - v
		}
		total += (1-s)*(lz-x[labels[r]]) + s*smooth/float64(k)
	}
	return total / float64(rows)
}

func TestCrossEntropy(t *testing.T) {
	for _, tc := range []struct {
		rows, k int
		s       float32
		scale   float32
	}{{1, 1, 0, 1}, {3, 3, 0.1, 1}, {17, 10, 0, 3}, {5, 1000, 0.1, 2}, {4, 17, 0.3, 40}, {64, 3000, 0.1, 4}} {
		t.Run(fmt.Sprintf("%dx%d_s%g_scale%g", tc.rows, tc.k, tc.s, tc.scale), func(t *testing.T) {
			logits := blRand(1, tc.scale, tc.rows, tc.k)
			labels := make([]int, tc.rows)
			for i := range labels {
				labels[i] = (i * 7) % tc.k
			}
			ce := CrossEntropy{Smoothing: tc.s}
			loss := ce.Forward(logits, labels)
			want := blCE64(blTo64(logits.Data), labels, tc.k, float64(tc.s))
			t.Logf("loss %.7g want %.7g", loss, want)
			if math.Abs(loss-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("loss %g, want %g", loss, want)
			}
			dx := ce.Backward()
			blCheckGrad(t, "dlogits", dx.Data, func(v []float64) float64 { return blCE64(v, labels, tc.k, float64(tc.s)) }, logits.Data, 1e-4, 1e-6)
		})
	}
	// Huge logits stay finite (max-shifted log-softmax).
	big := blRand(2, 1, 2, 4)
	big.Data[1] = 1e30
	var ce CrossEntropy
	if l := ce.Forward(big, []int{1, 0}); math.IsNaN(l) || math.IsInf(l, 0) {
		t.Fatalf("loss with a 1e30 logit: %g", l)
	}
}

// TestCrossEntropyNoAlloc covers the parallel path (rows split across the
// worker pool) on a language-model-like width.
func TestCrossEntropyNoAlloc(t *testing.T) {
	logits := blRand(1, 2, 96, 5000)
	labels := make([]int, 96)
	for i := range labels {
		labels[i] = i * 37
	}
	ce := CrossEntropy{Smoothing: 0.1}
	step := func() { ce.Forward(logits, labels); ce.Backward() }
	step()
	if a := testing.AllocsPerRun(5, step); a != 0 {
		t.Fatalf("%g allocations per Forward+Backward", a)
	}
}

// BenchmarkCrossEntropy is a language-model loss (512 tokens x 32000
// classes) and a ViT batch (32 x 1000), Forward+Backward.
func BenchmarkCrossEntropy(b *testing.B) {
	for _, sh := range [][2]int{{32, 1000}, {512, 32000}} {
		logits := blRand(1, 2, sh[0], sh[1])
		labels := make([]int, sh[0])
		for i := range labels {
			labels[i] = (i * 7919) % sh[1]
		}
		ce := CrossEntropy{Smoothing: 0.1}
		b.Run(fmt.Sprintf("%dx%d", sh[0], sh[1]), func(b *testing.B) {
			for b.Loop() {
				ce.Forward(logits, labels)
				ce.Backward()
			}
		})
	}
}

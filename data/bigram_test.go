package data

import (
	"math"
	"testing"
)

// TestBigram checks the add-one formula on a stream small enough to count
// by hand, that the conditional distributions sum to one, and the errors.
func TestBigram(t *testing.T) {
	// pairs: 0->1 twice, 1->0, 1->2; contexts c(0)=2, c(1)=2, c(2)=0
	b, err := NewBigram([]int{0, 1, 0, 1, 2}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v, w int
		p    float64
	}{{0, 1, 3.0 / 5}, {0, 0, 1.0 / 5}, {1, 2, 2.0 / 5}, {2, 0, 1.0 / 3}} {
		if got := math.Exp(b.LogProb(tc.v, tc.w)); math.Abs(got-tc.p) > 1e-15 {
			t.Errorf("P(%d|%d) = %g, want %g", tc.w, tc.v, got, tc.p)
		}
	}
	for v := 0; v < 3; v++ {
		var s float64
		for w := 0; w < 3; w++ {
			s += math.Exp(b.LogProb(v, w))
		}
		if math.Abs(s-1) > 1e-12 {
			t.Errorf("sum over w of P(w|%d) = %g", v, s)
		}
	}
	ppl, n, err := b.Perplexity([]int{0, 1, 2})
	if want := math.Sqrt(1 / (3.0 / 5 * 2.0 / 5)); err != nil || n != 2 || math.Abs(ppl-want) > 1e-12 {
		t.Errorf("Perplexity = %g over %d (%v), want %g over 2", ppl, n, err, want)
	}
	if _, err := NewBigram([]int{0, 3}, 3); err == nil {
		t.Error("training id outside the vocabulary accepted")
	}
	if _, _, err := b.Perplexity([]int{0}); err == nil {
		t.Error("one-token stream accepted")
	}
	if _, _, err := b.Perplexity([]int{0, -1}); err == nil {
		t.Error("negative id accepted")
	}
}

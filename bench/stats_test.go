package bench

import "testing"

func TestMedianQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if got := Median(xs); got != 3 || xs[0] != 5 {
		t.Fatalf("Median = %g (input %v), want 3 and the input unsorted", got, xs)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Fatalf("Median of 4 = %g, want 2.5", got)
	}
	if Median(nil) != 0 || Quantile(nil, 0.5) != 0 {
		t.Fatal("empty input is 0")
	}
	sorted := []float64{1, 2, 3, 4, 5}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.9, 4.6}, {1, 5}} {
		if got := Quantile(sorted, c.q); got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("Quantile(%g) = %g, want %g", c.q, got, c.want)
		}
	}
}

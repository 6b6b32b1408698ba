package kernels

import "testing"

// TestReadAll: every element is read once, on every path and thread
// count, including lengths that leave tails.
func TestReadAll(t *testing.T) {
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			for _, n := range []int{0, 1, 63, 64, 65, 4095, 8192 + 17, 100000} {
				buf := make([]float32, n)
				for i := range buf {
					buf[i] = 1
				}
				for _, th := range []int{1, 2, 3} {
					prev := Threads()
					SetThreads(th)
					got := ReadAll(buf)
					SetThreads(prev)
					if got != float32(n) {
						t.Errorf("%s n=%d threads=%d: sum %v, want %d", p, n, th, got, n)
					}
				}
			}
		})
	}
}

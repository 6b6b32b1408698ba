package nn

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/slabml/slab/kernels"
)

// Sampler picks the next token from logits. Temperature 0 is greedy
// (argmax, ties to the lower id); otherwise softmax(logits/Temperature)
// restricted to the TopK most likely ids (0 = all) and then to the smallest
// set whose mass reaches TopP (1 = all). Seeded, so a run is reproducible.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64
	rng         *rand.Rand
	idx         []int32
	prob        []float32
}

// NewSampler returns a sampler with its own seeded generator.
func NewSampler(temperature float64, topK int, topP float64, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopK: topK, TopP: topP, rng: rand.New(rand.NewPCG(seed, 7))}
}

// Sample returns the chosen id; scratch is reused so steady-state sampling
// does not allocate.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	n := len(logits)
	if cap(s.prob) < n {
		s.prob, s.idx = make([]float32, n), make([]int32, n)
	}
	p, idx := s.prob[:n], s.idx[:n]
	m := logits[0]
	for _, v := range logits {
		m = max(m, v)
	}
	inv := 1 / s.Temperature
	prob := func(v float32) float32 { return kernels.Expf(float32(float64(v-m) * inv)) }
	k := n
	if s.TopK > 0 && s.TopK < n {
		k = s.TopK
		// Select the k largest logits with a min-heap in idx[:k]
		// (O(V log k): ~0.1 ms at V=32000, k=40, where a full sort cost
		// ~8 ms, a third of a 60M-model decode step), sort those k, and
		// exponentiate only them: exp over the whole vocabulary was 5-12 %
		// of a 20M-model decode step (most of it in Expf's slow path for
		// logits far below the maximum), and exp is monotonic, so the
		// selection is the same.
		h := idx[:k]
		for i := range h {
			h[i] = int32(i)
		}
		for i := k/2 - 1; i >= 0; i-- {
			siftDown(h, logits, i)
		}
		for i := k; i < n; i++ {
			if logits[i] > logits[h[0]] {
				h[0] = int32(i)
				siftDown(h, logits, 0)
			}
		}
		slices.SortFunc(h, func(a, b int32) int { return cmp.Compare(logits[b], logits[a]) })
		for _, i := range h {
			p[i] = prob(logits[i])
		}
	} else {
		for i, v := range logits {
			p[i] = prob(v)
		}
		if s.TopP < 1 {
			for i := range idx {
				idx[i] = int32(i)
			}
			// Nucleus sampling over the whole vocabulary needs the full order.
			slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(p[b], p[a]) })
		}
	}
	if k == n && s.TopP >= 1 {
		for i := range idx {
			idx[i] = int32(i)
		}
	}
	var total float64
	for _, i := range idx[:k] {
		total += float64(p[i])
	}
	if s.TopP > 0 && s.TopP < 1 {
		var acc float64
		for j, i := range idx[:k] {
			acc += float64(p[i])
			if acc >= s.TopP*total {
				k = j + 1
				total = acc
				break
			}
		}
	}
	r := s.rng.Float64() * total
	var acc float64
	for _, i := range idx[:k] {
		acc += float64(p[i])
		if acc > r {
			return int(i)
		}
	}
	return int(idx[k-1])
}

// siftDown restores the min-heap order (ids keyed by p) of h below position i.
func siftDown(h []int32, p []float32, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && p[h[r]] < p[h[l]] {
			c = r
		}
		if p[h[i]] <= p[h[c]] {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

package llama

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// State is a generation session: one KV cache per layer plus the scratch
// of the decode path, all allocated once by NewState.
type State struct {
	caches []*nn.KVCache
	B      int
	maxT   int
	window []int          // recent tokens, for sliding the context in Generate
	last   *tensor.Tensor // [B, Dim] hidden state of each sequence's last position
}

// NewState allocates caches for batch sequences of up to maxT positions.
func (m *Model) NewState(batch, maxT int) (*State, error) {
	if maxT > m.Cfg.MaxSeq {
		return nil, fmt.Errorf("model %s: %d positions exceed max positions %d", m.Cfg.Name, maxT, m.Cfg.MaxSeq)
	}
	s := &State{B: batch, maxT: maxT, last: tensor.New(batch, m.Cfg.Dim), window: make([]int, 0, maxT)}
	for _, b := range m.Blocks {
		s.caches = append(s.caches, b.Attn.NewCache(batch, maxT))
	}
	return s, nil
}

// Len is the number of positions already in the cache.
func (s *State) Len() int { return s.caches[0].Len }

// Reset empties the caches so that the state can serve a new prompt.
func (s *State) Reset() {
	for _, c := range s.caches {
		c.Len = 0
	}
}

// Step feeds ids [B*T] (T new positions per sequence) through the model in
// eval mode and returns the logits of each sequence's last position
// [B, Vocab]. Only the last position reaches the lm_head, so a prompt costs
// one vocabulary projection, not T.
func (m *Model) Step(s *State, ids []int, T int) (*tensor.Tensor, error) {
	x, err := m.Embed.Forward(ids, s.B, T)
	if err != nil {
		return nil, err
	}
	for i, b := range m.Blocks {
		a, err := b.Attn.ForwardCached(b.InputNorm.Forward(x, false), s.caches[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		h1 := ensure(&b.h1, x.Shape)
		add(h1.Data, x.Data, a.Data)
		f := b.MLP.Forward(b.PostNorm.Forward(h1, false))
		h2 := ensure(&b.h2, x.Shape)
		add(h2.Data, h1.Data, f.Data)
		x = h2
	}
	C := m.Cfg.Dim
	for b := 0; b < s.B; b++ {
		copy(s.last.Data[b*C:(b+1)*C], x.Data[(b*T+T-1)*C:(b*T+T)*C])
	}
	return m.head(s.last, false), nil
}

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

// Generate runs prompt (one sequence) through s and samples n tokens,
// calling emit after each (streaming); emit may stop early by returning
// false. It returns the generated ids (in out, reused if big enough).
// When the cache is full the context slides: the last half of the window is
// fed again from position 0 (one prefill every maxT/2 tokens), so n is not
// limited by the context length. A prompt longer than the cache keeps its
// last maxT/2 tokens.
func (m *Model) Generate(s *State, prompt []int, n int, smp *Sampler, out []int, emit func(id int) bool) ([]int, error) {
	if s.B != 1 {
		return nil, fmt.Errorf("generate: state batch %d, want 1", s.B)
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generate: empty prompt")
	}
	s.Reset()
	out = out[:0]
	keep := max(1, s.maxT/2)
	if len(prompt) > s.maxT {
		prompt = prompt[len(prompt)-keep:]
	}
	s.window = append(s.window[:0], prompt...)
	logits, err := m.Step(s, prompt, len(prompt))
	if err != nil {
		return nil, err
	}
	var one [1]int
	for i := 0; i < n; i++ {
		id := smp.Sample(logits.Data)
		out = append(out, id)
		if emit != nil && !emit(id) {
			break
		}
		if i == n-1 {
			break
		}
		if s.Len() == s.maxT {
			// Slide: restart the cache from the last keep-1 tokens; the
			// new token below makes keep.
			k := keep - 1
			copy(s.window, s.window[len(s.window)-k:])
			s.window = s.window[:k]
			s.Reset()
			if k > 0 {
				if _, err = m.Step(s, s.window, k); err != nil {
					return out, err
				}
			}
		}
		one[0] = id
		s.window = append(s.window, id)
		if logits, err = m.Step(s, one[:], 1); err != nil {
			return out, err
		}
	}
	return out, nil
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

package adaptive

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// State is a generation session: one KV cache per layer and the scratch of
// the decode path, all allocated once by NewState.
type State struct {
	caches []*nn.KVCache
	B      int
	maxT   int
	window []int          // recent tokens, for sliding the context in Generate
	last   *tensor.Tensor // [B, Dim] hidden state of each sequence's last position
}

// NewState allocates caches for batch sequences of up to maxT positions.
func (m *Model) NewState(batch, maxT int) (*State, error) {
	if batch < 1 || maxT < 1 || maxT > m.Cfg.MaxSeq {
		return nil, fmt.Errorf("model %s: session of batch %d and %d positions (want batch >= 1 and 1 <= positions <= %d)", m.Cfg.Name, batch, maxT, m.Cfg.MaxSeq)
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

// Step feeds ids [B*T] (T new positions per sequence) in evaluation mode
// and returns the scores of each sequence's last position [B, Vocab]:
// logits, or the adaptive softmax's exact log-probabilities (equally good
// for sampling: softmax of log-probabilities is the distribution). Only
// the last position reaches the output layer.
func (m *Model) Step(s *State, ids []int, T int) (*tensor.Tensor, error) {
	if T < 1 || len(ids) != s.B*T {
		return nil, fmt.Errorf("model %s: %d ids for batch %d x %d positions", m.Cfg.Name, len(ids), s.B, T)
	}
	L := s.Len()
	if L+T > s.maxT {
		return nil, fmt.Errorf("model %s: %d positions exceed the session's %d", m.Cfg.Name, L+T, s.maxT)
	}
	x, err := m.embed(ids, s.B, T, L)
	if err != nil {
		return nil, err
	}
	for i, b := range m.Blocks {
		a, err := b.Attn.ForwardCached(b.N1.Forward(x, nn.Eval), s.caches[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		h1 := tensor.Ensure(&b.h1, x.Shape...)
		kernels.Add(h1.Data, x.Data, a.Data)
		f := b.ffn(b.N2.Forward(h1, nn.Eval))
		h2 := tensor.Ensure(&b.h2, x.Shape...)
		kernels.Add(h2.Data, h1.Data, f.Data)
		x = h2
	}
	C := m.Cfg.Dim
	for b := 0; b < s.B; b++ {
		copy(s.last.Data[b*C:(b+1)*C], x.Data[(b*T+T-1)*C:(b*T+T)*C])
	}
	m.lossMode = 0
	return m.head(s.last)
}

// Generate runs prompt (one sequence) through s and samples n tokens from
// the full distribution, calling emit after each; emit may stop early by
// returning false. It returns the generated ids (in out, reused if big
// enough). When the cache is full the context slides: the last half of
// the window is fed again from position 0.
func (m *Model) Generate(s *State, prompt []int, n int, smp *nn.Sampler, out []int, emit func(id int) bool) ([]int, error) {
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
	scores, err := m.Step(s, prompt, len(prompt))
	if err != nil {
		return nil, err
	}
	var one [1]int
	for i := 0; i < n; i++ {
		id := smp.Sample(scores.Data)
		out = append(out, id)
		if emit != nil && !emit(id) {
			break
		}
		if i == n-1 {
			break
		}
		if s.Len() == s.maxT {
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
		if len(s.window) == cap(s.window) {
			copy(s.window, s.window[1:])
			s.window = s.window[:len(s.window)-1]
		}
		s.window = append(s.window, id)
		if scores, err = m.Step(s, one[:], 1); err != nil {
			return out, err
		}
	}
	return out, nil
}

// session is a State bound to its model: the models.Session of a decoder.
type session struct {
	m  *Model
	st *State
}

// NewSession allocates a generation session (models.Decoder).
func (m *Model) NewSession(batch, maxT int) (models.Session, error) {
	st, err := m.NewState(batch, maxT)
	if err != nil {
		return nil, err
	}
	return &session{m, st}, nil
}

func (s *session) Step(ids []int, T int) (*tensor.Tensor, error) { return s.m.Step(s.st, ids, T) }

func (s *session) Generate(prompt []int, n int, smp *nn.Sampler, out []int, emit func(id int) bool) ([]int, error) {
	return s.m.Generate(s.st, prompt, n, smp, out, emit)
}

func (s *session) Reset() { s.st.Reset() }

// CacheBytes is what a decode step at position pos reads of the caches,
// every block's keys and values.
func (m *Model) CacheBytes(pos int) int64 {
	var n int64
	for _, b := range m.Blocks {
		n += b.Attn.CacheReadBytes(pos)
	}
	return n
}

// DecodeBytes is what one decode step streams from memory: every weight,
// since the output reads the whole (tied) embedding tables, and one row of
// them is read again by the input.
func (m *Model) DecodeBytes() int64 {
	return 4 * models.NumParams(m)
}

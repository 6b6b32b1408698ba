package llama

import (
	"fmt"

	"github.com/slabml/slab/models"
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
		a, err := b.Attn.ForwardCached(b.InputNorm.Forward(x, nn.Eval), s.caches[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		h1 := ensure(&b.h1, x.Shape)
		add(h1.Data, x.Data, a.Data)
		f := b.MLP.Forward(b.PostNorm.Forward(h1, nn.Eval))
		h2 := ensure(&b.h2, x.Shape)
		add(h2.Data, h1.Data, f.Data)
		x = h2
	}
	C := m.Cfg.Dim
	for b := 0; b < s.B; b++ {
		copy(s.last.Data[b*C:(b+1)*C], x.Data[(b*T+T-1)*C:(b*T+T)*C])
	}
	return m.head(s.last, nn.Eval), nil
}

// Generate runs prompt (one sequence) through s and samples n tokens,
// calling emit after each (streaming); emit may stop early by returning
// false. It returns the generated ids (in out, reused if big enough).
// When the cache is full the context slides: the last half of the window is
// fed again from position 0 (one prefill every maxT/2 tokens), so n is not
// limited by the context length. A prompt longer than the cache keeps its
// last maxT/2 tokens.
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

// DecodeBytes is what one decode step streams from memory: every weight
// except the embedding table, of which one row is read (a tied table is
// read again whole as lm_head).
func (m *Model) DecodeBytes() int64 {
	var n int64
	for _, p := range m.Params() {
		n += int64(p.W.Size())
	}
	n -= int64(m.Cfg.Vocab-1) * int64(m.Cfg.Dim)
	if m.LMHead == nil {
		n += int64(m.Cfg.Vocab) * int64(m.Cfg.Dim)
	}
	return 4 * n
}

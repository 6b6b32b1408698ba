package llama

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Block is one pre-norm decoder layer:
// h1 = x + attn(input_layernorm(x)); h2 = h1 + mlp(post_attention_layernorm(h1)).
type Block struct {
	InputNorm, PostNorm nn.Norm
	Attn                *nn.CausalAttention
	MLP                 *nn.SwiGLU
	h1, h2, dx, dh1     *tensor.Tensor
}

// Model is the decoder LM.
type Model struct {
	Cfg    Config
	Embed  *nn.Embedding
	Blocks []*Block
	Norm   nn.Norm
	// LMHead is nil when the output is tied to Embed.
	LMHead *nn.Linear
	Rope   *nn.RoPE
	// tied is the output projection whose weight is Embed's table
	// (nn.Embedding.Tie) when LMHead is nil.
	tied *nn.Linear
}

// New builds a model with HF LLaMA initialisation (normal std InitStd for
// every Linear and the embedding) from seed.
func New(c Config, seed uint64) (*Model, error) { return build(c, seed, true) }

// build is New; draw false leaves the parameters' random values out:
// every parameter is allocated (memory the OS has not provided yet, so
// not resident until written) for a load that overwrites them all
// (models.BuildBare).
func build(c Config, seed uint64, draw bool) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	spec := c.NormSpec()
	newNorm := func(name string) nn.Norm { return spec.New(name, c.Dim) }
	m := &Model{Cfg: c, Embed: nn.NewEmbedding("model.embed_tokens", c.Vocab, c.Dim),
		Rope: nn.NewRoPE(c.HeadDim, c.MaxSeq, c.RopeBase)}
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		m.Blocks = append(m.Blocks, &Block{
			InputNorm: newNorm(p + "input_layernorm"),
			PostNorm:  newNorm(p + "post_attention_layernorm"),
			Attn:      nn.NewCausalAttention(p+"self_attn", c.Dim, c.Heads, c.KVHeads, c.HeadDim, m.Rope),
			MLP:       nn.NewSwiGLU(p+"mlp", c.Dim, c.Hidden),
		})
		m.Blocks[i].Attn.Linear = c.Attn == AttnSLA
	}
	m.Norm = newNorm("model.norm")
	if !c.Tied {
		m.LMHead = nn.NewLinear("lm_head", c.Dim, c.Vocab, c.Norm == NormNone)
	} else {
		m.tied = m.Embed.Tie()
	}
	if c.Norm == NormNone {
		// The layout fuse.FuseLLaMA leaves behind, so a folded checkpoint loads.
		for i, b := range m.Blocks {
			p := fmt.Sprintf("model.layers.%d.", i)
			b.Attn.Q = nn.NewLinear(p+"self_attn.q_proj", c.Dim, c.Heads*c.HeadDim, true)
			b.Attn.K = nn.NewLinear(p+"self_attn.k_proj", c.Dim, c.KVHeads*c.HeadDim, true)
			b.Attn.V = nn.NewLinear(p+"self_attn.v_proj", c.Dim, c.KVHeads*c.HeadDim, true)
			b.Attn.Linear = c.Attn == AttnSLA
			b.MLP.Gate = nn.NewLinear(p+"mlp.gate_proj", c.Dim, c.Hidden, true)
			b.MLP.Up = nn.NewLinear(p+"mlp.up_proj", c.Dim, c.Hidden, true)
		}
	}
	rng := nn.InitRand(draw, seed, 0x5eed)
	for _, p := range m.Params() {
		if len(p.W.Shape) == 2 && rng != nil {
			for i := range p.W.Data {
				p.W.Data[i] = float32(rng.NormFloat64() * c.InitStd)
			}
		}
	}
	nn.MarkDecode(m) // prompts dequantize rather than keep packed low-precision copies
	return m, nil
}

// Params returns every learnable parameter once, in state-dict order.
func (m *Model) Params() []*nn.Param {
	ps := m.Embed.Params()
	for _, b := range m.Blocks {
		ps = append(ps, b.InputNorm.Params()...)
		ps = append(ps, b.Attn.Params()...)
		ps = append(ps, b.PostNorm.Params()...)
		ps = append(ps, b.MLP.Params()...)
	}
	ps = append(ps, m.Norm.Params()...)
	if m.LMHead != nil {
		ps = append(ps, m.LMHead.Params()...)
	}
	return ps
}

// Buffers returns every buffer (BN running stats, LinearNorm counters).
func (m *Model) Buffers() []*nn.Buffer {
	var bs []*nn.Buffer
	for _, b := range m.Blocks {
		bs = append(bs, b.InputNorm.Buffers()...)
		bs = append(bs, b.PostNorm.Buffers()...)
	}
	return append(bs, m.Norm.Buffers()...)
}

// Forward computes logits [B,T,Vocab] for ids [B*T] (row-major [B,T]).
// mode selects batch statistics and the PRepBN schedule's advance; the
// returned tensor is model-owned and valid until the next Forward.
func (m *Model) Forward(ids []int, B, T int, mode nn.Mode) (*tensor.Tensor, error) {
	if T > m.Cfg.MaxSeq {
		return nil, fmt.Errorf("model %s: sequence length %d exceeds max positions %d", m.Cfg.Name, T, m.Cfg.MaxSeq)
	}
	x, err := m.Embed.Forward(ids, B, T)
	if err != nil {
		return nil, err
	}
	for _, b := range m.Blocks {
		x = b.forward(x, mode)
	}
	return m.head(x, mode), nil
}

func (b *Block) forward(x *tensor.Tensor, mode nn.Mode) *tensor.Tensor {
	a := b.Attn.Forward(b.InputNorm.Forward(x, mode))
	h1 := ensure(&b.h1, x.Shape)
	add(h1.Data, x.Data, a.Data)
	f := b.MLP.Forward(b.PostNorm.Forward(h1, mode))
	h2 := ensure(&b.h2, x.Shape)
	add(h2.Data, h1.Data, f.Data)
	return h2
}

// add is the residual sum; kernels.Add splits large slices over the pool
// without allocating.
func add(dst, x, y []float32) { kernels.Add(dst, x, y) }

// ensure is tensor.Ensure for a shape held in a slice; it allocates only
// when the buffer must grow (a prompt longer than any before), so the
// alternation of prefill and decode shapes costs nothing.
func ensure(t **tensor.Tensor, shape []int) *tensor.Tensor { return tensor.Ensure(t, shape...) }

// head applies the final norm and the output projection.
func (m *Model) head(x *tensor.Tensor, mode nn.Mode) *tensor.Tensor {
	return nn.LinearForward(m.output(), m.Norm.Forward(x, mode))
}

// output is the output projection: lm_head, or the embedding tied to it.
func (m *Model) output() *nn.Linear {
	if m.LMHead != nil {
		return m.LMHead
	}
	return m.tied
}

// Backward takes dlogits of the last training Forward and accumulates all
// parameter gradients.
func (m *Model) Backward(dlogits *tensor.Tensor) {
	dx := m.Norm.Backward(m.output().Backward(dlogits))
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		dx = m.Blocks[i].backward(dx)
	}
	m.Embed.Backward(dx)
}

func (b *Block) backward(dh2 *tensor.Tensor) *tensor.Tensor {
	df := b.PostNorm.Backward(b.MLP.Backward(dh2))
	dh1 := tensor.Ensure(&b.dh1, dh2.Shape...)
	add(dh1.Data, dh2.Data, df.Data)
	da := b.InputNorm.Backward(b.Attn.Backward(dh1))
	dx := tensor.Ensure(&b.dx, dh2.Shape...)
	add(dx.Data, dh1.Data, da.Data)
	return dx
}

// DropGrads releases every gradient buffer: an inference-only model (bench,
// generation) then holds its weights once instead of twice, which is
// 1.5 GB for llama_350m. Backward must not be called afterwards.
func (m *Model) DropGrads() {
	for _, p := range m.Params() {
		p.G = nil
	}
}

// Family is "llama".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// Vocab is the number of logits per position.
func (m *Model) Vocab() int { return m.Cfg.Vocab }

// Context is the longest sequence Forward accepts.
func (m *Model) Context() int { return m.Cfg.MaxSeq }

// Norms lists each layer's input_layernorm and post_attention_layernorm,
// then model.norm.
func (m *Model) Norms() []nn.NormSlot {
	s := make([]nn.NormSlot, 0, 2*len(m.Blocks)+1)
	for i, b := range m.Blocks {
		p := fmt.Sprintf("model.layers.%d.", i)
		s = append(s, nn.NormSlot{Name: p + "input_layernorm", Norm: &b.InputNorm},
			nn.NormSlot{Name: p + "post_attention_layernorm", Norm: &b.PostNorm})
	}
	return append(s, nn.NormSlot{Name: "model.norm", Norm: &m.Norm})
}

// FoldSites folds each input_layernorm into q_proj, k_proj and v_proj (all
// three read the same normalised tokens), post_attention_layernorm into
// gate_proj and up_proj, and, unlike the official code (docs/method.md
// 2.2), the final model.norm into lm_head. A tied lm_head cannot absorb a
// fold without changing the embedding, so it is untied here into its own
// copy first.
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	if m.LMHead == nil {
		if err := m.Embed.Untie(); err != nil {
			return nil, err
		}
		m.LMHead = nn.NewLinear("lm_head", m.Cfg.Dim, m.Cfg.Vocab, false)
		copy(m.LMHead.Weight.W.Data, m.Embed.Weight.W.Data)
		m.LMHead.Weight.MarkChanged()
		m.Cfg.Tied = false
		m.tied = nil
	}
	slots := m.Norms()
	var sites []nn.FoldSite
	for i, b := range m.Blocks {
		sites = append(sites,
			nn.FoldSite{Slot: slots[2*i], Into: []*nn.Linear{b.Attn.Q, b.Attn.K, b.Attn.V}},
			nn.FoldSite{Slot: slots[2*i+1], Into: []*nn.Linear{b.MLP.Gate, b.MLP.Up}})
	}
	return append(sites, nn.FoldSite{Slot: slots[len(slots)-1], Into: []*nn.Linear{m.LMHead}}), nil
}

// Folded records the folded layout (norm "none": New builds biased
// q/k/v/gate/up and an untied lm_head with bias).
func (m *Model) Folded() { m.Cfg.Norm = NormNone }

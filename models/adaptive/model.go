package adaptive

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Block is one pre-norm decoder layer of fairseq's transformer_lm:
// h1 = x + Dropout(Attn(N1(x))); h2 = h1 + Dropout(FC2(ReLU(FC1(N2(h1))))).
type Block struct {
	N1, N2   nn.Norm
	Attn     *nn.CausalAttention
	FC1, FC2 *nn.Linear

	drop1, drop2    nn.Dropout
	act, dact       *tensor.Tensor // ReLU output, and gradient of FC1's output
	h1, h2, dx, dh1 *tensor.Tensor
	pre             *tensor.Tensor // FC1's output (ReLU's input) of the last Forward
}

// Model is the adaptive-input decoder.
type Model struct {
	Cfg     Config
	Input   *nn.AdaptiveInput   // adaptive output
	Softmax *nn.AdaptiveSoftmax // adaptive output, tied to Input
	Embed   *nn.Embedding       // full output, tied
	Blocks  []*Block
	out     *nn.Linear // the full output: Embed's table (nn.Embedding.Tie)

	pos      []float32 // sinusoidal table [MaxSeq, Dim]
	scale    float32   // sqrt(Dim)
	dropIn   nn.Dropout
	calls    int64 // training forwards so far: the dropout seed
	callsBuf *nn.Buffer
	pcg      *rand.PCG
	rng      *rand.Rand

	x0, dx0  *tensor.Tensor
	h        *tensor.Tensor // trunk output of the last Forward
	last     *tensor.Tensor
	vloss    nn.VocabLoss
	lossMode int // what BackwardLoss undoes: 0 none, 1 adaptive, 2 full
}

// New builds a model with fairseq's initialisation (Xavier-uniform
// Linears with zero biases, normal(0, D^-1/2) embeddings) from seed.
func New(c Config, seed uint64) (*Model, error) { return build(c, seed, true) }

// build is New; draw false leaves the parameters' random values out:
// every parameter is allocated (memory the OS has not provided yet, so
// not resident until written) for a load that overwrites them all
// (models.BuildBare).
func build(c Config, seed uint64, draw bool) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	D := c.Dim
	spec := c.NormSpec()
	m := &Model{Cfg: c, scale: float32(math.Sqrt(float64(D)))}
	m.callsBuf = &nn.Buffer{Name: "decoder.dropout_calls", I: &m.calls}
	m.pcg = rand.NewPCG(0, 0)
	m.rng = rand.New(m.pcg)
	var err error
	if c.Output == OutputAdaptive {
		if m.Input, err = nn.NewAdaptiveInput("decoder.embed_tokens", c.Vocab, D, c.Factor, D, c.cutoffs()); err != nil {
			return nil, err
		}
		if m.Softmax, err = nn.NewTiedAdaptiveSoftmax("decoder.adaptive_softmax", D, m.Input, true); err != nil {
			return nil, err
		}
		m.Softmax.TailDropout = c.TailDropout
	} else {
		m.Embed = nn.NewEmbedding("decoder.embed_tokens", c.Vocab, D)
		m.out = m.Embed.Tie()
	}
	bias := c.Norm == NormNone // the layout a fold leaves behind
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("decoder.layers.%d.", i)
		a := nn.NewCausalAttention(p+"self_attn", D, c.Heads, c.Heads, D/c.Heads, nil)
		a.Q = nn.NewLinear(p+"self_attn.q_proj", D, D, bias)
		a.K = nn.NewLinear(p+"self_attn.k_proj", D, D, bias)
		a.V = nn.NewLinear(p+"self_attn.v_proj", D, D, bias)
		a.O = nn.NewLinear(p+"self_attn.out_proj", D, D, false)
		b := &Block{
			N1: spec.New(p+"self_attn_layer_norm", D), N2: spec.New(p+"final_layer_norm", D),
			Attn: a, FC1: nn.NewLinear(p+"fc1", D, c.Hidden, true), FC2: nn.NewLinear(p+"fc2", c.Hidden, D, true)}
		b.drop1.Rate, b.drop2.Rate = c.Dropout, c.Dropout
		m.Blocks = append(m.Blocks, b)
	}
	m.dropIn.Rate = c.Dropout
	m.pos = sinusoidal(c.MaxSeq, D)
	rng := nn.InitRand(draw, seed, 0xada)
	if m.Input != nil {
		m.Input.Init(rng)
		m.Softmax.Init(rng)
	} else if rng != nil {
		std := 1 / math.Sqrt(float64(D))
		for i := range m.Embed.Weight.W.Data {
			m.Embed.Weight.W.Data[i] = float32(rng.NormFloat64() * std)
		}
	}
	for _, b := range m.Blocks {
		for _, l := range []*nn.Linear{b.Attn.Q, b.Attn.K, b.Attn.V, b.Attn.O, b.FC1, b.FC2} {
			nn.XavierUniform(l.Weight.W, rng)
		}
	}
	for _, p := range m.Params() {
		p.MarkChanged()
	}
	nn.MarkDecode(m) // prompts dequantize rather than keep packed low-precision copies
	return m, nil
}

// sinusoidal is fairseq's SinusoidalPositionalEmbedding table [n, dim]:
// sin(p f_i) in the first half, cos(p f_i) in the second, f_i =
// 10000^(-i/(dim/2-1)).
func sinusoidal(n, dim int) []float32 {
	half := dim / 2
	step := math.Log(10000) / float64(max(half-1, 1))
	t := make([]float32, n*dim)
	for p := 0; p < n; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) * math.Exp(-float64(i)*step)
			t[p*dim+i] = float32(math.Sin(a))
			t[p*dim+half+i] = float32(math.Cos(a))
		}
	}
	return t
}

// Params returns every learnable parameter once, in state-dict order.
func (m *Model) Params() []*nn.Param {
	var ps []*nn.Param
	if m.Input != nil {
		ps = append(ps, m.Input.Params()...)
	} else {
		ps = append(ps, m.Embed.Params()...)
	}
	for _, b := range m.Blocks {
		ps = append(ps, b.Attn.Params()...)
		ps = append(ps, b.N1.Params()...)
		ps = append(ps, b.FC1.Params()...)
		ps = append(ps, b.FC2.Params()...)
		ps = append(ps, b.N2.Params()...)
	}
	if m.Softmax != nil {
		ps = append(ps, m.Softmax.Params()...)
	}
	return ps
}

// Buffers returns the norms' buffers and the dropout call counter.
func (m *Model) Buffers() []*nn.Buffer {
	var bs []*nn.Buffer
	for _, b := range m.Blocks {
		bs = append(bs, b.N1.Buffers()...)
		bs = append(bs, b.N2.Buffers()...)
	}
	return append(bs, m.callsBuf)
}

// trunk maps ids [B*T] to the last block's output [B,T,D], positions
// starting at pos0 (0 except in cached decoding, which uses stepTrunk).
func (m *Model) trunk(ids []int, B, T int, mode nn.Mode) (*tensor.Tensor, error) {
	if T < 1 || B < 1 || T > m.Cfg.MaxSeq {
		return nil, fmt.Errorf("model %s: sequence length %d outside [1, %d] (or batch %d < 1)", m.Cfg.Name, T, m.Cfg.MaxSeq, B)
	}
	if len(ids) != B*T {
		return nil, fmt.Errorf("model %s: %d ids for batch %d x %d positions", m.Cfg.Name, len(ids), B, T)
	}
	train := mode == nn.Train
	if train {
		m.pcg.Seed(uint64(m.calls), 0xd50)
		m.calls++
	}
	x, err := m.embed(ids, B, T, 0)
	if err != nil {
		return nil, err
	}
	x = m.dropIn.Forward(x, train, m.rng)
	for _, b := range m.Blocks {
		x = b.forward(x, mode, m.rng)
	}
	m.h = x
	return x, nil
}

// embed returns sqrt(D) * embedding(ids) + positions pos0... as [B,T,D].
func (m *Model) embed(ids []int, B, T, pos0 int) (*tensor.Tensor, error) {
	var e *tensor.Tensor
	var err error
	if m.Input != nil {
		e, err = m.Input.Forward(ids, B, T)
	} else {
		e, err = m.Embed.Forward(ids, B, T)
	}
	if err != nil {
		return nil, err
	}
	D := m.Cfg.Dim
	x := tensor.Ensure(&m.x0, B, T, D)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			o := (b*T + t) * D
			p := (pos0 + t) * D
			kernels.Scale(x.Data[o:o+D], m.scale, e.Data[o:o+D])
			kernels.AddTo(x.Data[o:o+D], m.pos[p:p+D])
		}
	}
	return x, nil
}

func (b *Block) forward(x *tensor.Tensor, mode nn.Mode, rng *rand.Rand) *tensor.Tensor {
	train := mode == nn.Train
	a := b.drop1.Forward(b.Attn.Forward(b.N1.Forward(x, mode)), train, rng)
	h1 := tensor.Ensure(&b.h1, x.Shape...)
	kernels.Add(h1.Data, x.Data, a.Data)
	f := b.drop2.Forward(b.ffn(b.N2.Forward(h1, mode)), train, rng)
	h2 := tensor.Ensure(&b.h2, x.Shape...)
	kernels.Add(h2.Data, h1.Data, f.Data)
	return h2
}

// ffn is FC2(ReLU(FC1(x))), keeping FC1's output for the ReLU's gradient.
func (b *Block) ffn(x *tensor.Tensor) *tensor.Tensor {
	h := b.FC1.Forward(x)
	b.pre = h
	a := tensor.Ensure(&b.act, h.Shape...)
	for i, v := range h.Data {
		a.Data[i] = max(v, 0)
	}
	return b.FC2.Forward(a)
}

func (b *Block) backward(dh2 *tensor.Tensor) *tensor.Tensor {
	da := b.FC2.Backward(b.drop2.Backward(dh2))
	dpre := tensor.Ensure(&b.dact, da.Shape...)
	for i, v := range b.pre.Data {
		if v > 0 {
			dpre.Data[i] = da.Data[i]
		} else {
			dpre.Data[i] = 0
		}
	}
	df := b.N2.Backward(b.FC1.Backward(dpre))
	dh1 := tensor.Ensure(&b.dh1, dh2.Shape...)
	kernels.Add(dh1.Data, dh2.Data, df.Data)
	dat := b.N1.Backward(b.Attn.Backward(b.drop1.Backward(dh1)))
	dx := tensor.Ensure(&b.dx, dh2.Shape...)
	kernels.Add(dx.Data, dh1.Data, dat.Data)
	return dx
}

// Forward maps ids [B*T] to next-token scores [B,T,Vocab]: logits for the
// full output, exact log-probabilities for the adaptive one. An adaptive
// model trains through ForwardLoss (models.LossLM), so it refuses Train
// mode here. The result is model-owned, valid until the next Forward.
func (m *Model) Forward(ids []int, B, T int, mode nn.Mode) (*tensor.Tensor, error) {
	if m.Softmax != nil && mode == nn.Train {
		return nil, fmt.Errorf("model %s: an adaptive softmax trains through ForwardLoss (models.LossLM), not full logits", m.Cfg.Name)
	}
	h, err := m.trunk(ids, B, T, mode)
	if err != nil {
		return nil, err
	}
	m.lossMode = 0
	return m.head(h)
}

// head returns the scores of every row of h [..., D].
func (m *Model) head(h *tensor.Tensor) (*tensor.Tensor, error) {
	if m.Softmax != nil {
		return m.Softmax.LogProb(h)
	}
	return m.out.Forward(h), nil
}

// Backward accumulates the gradients of the last Train Forward from
// dlogits (the full output only; adaptive models use BackwardLoss).
func (m *Model) Backward(dlogits *tensor.Tensor) {
	if m.Softmax != nil {
		panic("adaptive: Backward of an adaptive-softmax model (use BackwardLoss)")
	}
	m.backTrunk(m.out.Backward(dlogits))
}

// backTrunk back-propagates d(loss)/d(trunk output) to the embeddings.
func (m *Model) backTrunk(dx *tensor.Tensor) {
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		dx = m.Blocks[i].backward(dx)
	}
	dx = m.dropIn.Backward(dx)
	de := tensor.Ensure(&m.dx0, dx.Shape...)
	kernels.Scale(de.Data, m.scale, dx.Data)
	if m.Input != nil {
		m.Input.Backward(de)
	} else {
		m.Embed.Backward(de)
	}
}

// ForwardLoss returns the mean negative log-likelihood of targets
// (models.LossLM): through the adaptive softmax (with its tail dropout in
// training), or through full logits and nn.VocabLoss.
func (m *Model) ForwardLoss(ids, targets []int, B, T int, mode nn.Mode) (float64, error) {
	if len(targets) != B*T {
		return 0, fmt.Errorf("model %s: %d targets for batch %d x %d positions", m.Cfg.Name, len(targets), B, T)
	}
	h, err := m.trunk(ids, B, T, mode)
	if err != nil {
		return 0, err
	}
	m.lossMode = 0
	if m.Softmax != nil {
		var l float64
		if mode == nn.Train {
			l, err = m.Softmax.ForwardTrain(h, targets, m.rng)
		} else {
			l, err = m.Softmax.Forward(h, targets)
		}
		if err == nil && mode == nn.Train {
			m.lossMode = 1
		}
		return l, err
	}
	for i, t := range targets {
		if t < 0 || t >= m.Cfg.Vocab {
			return 0, fmt.Errorf("model %s: target %d at %d outside [0,%d)", m.Cfg.Name, t, i, m.Cfg.Vocab)
		}
	}
	lg, err := m.head(h)
	if err != nil {
		return 0, err
	}
	if mode == nn.Train {
		m.lossMode = 2
	}
	return m.vloss.Forward(lg, targets), nil
}

// BackwardLoss accumulates the gradients of the last Train ForwardLoss.
func (m *Model) BackwardLoss() {
	switch m.lossMode {
	case 1:
		m.backTrunk(m.Softmax.Backward())
	case 2:
		m.Backward(m.vloss.Backward())
	default:
		panic("adaptive: BackwardLoss without a Train ForwardLoss")
	}
	m.lossMode = 0
}

// DropGrads releases every gradient buffer of an inference-only model.
func (m *Model) DropGrads() {
	for _, p := range m.Params() {
		p.G = nil
	}
}

// Family is "adaptive".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// Vocab is the number of scores per position.
func (m *Model) Vocab() int { return m.Cfg.Vocab }

// Context is the longest sequence Forward accepts.
func (m *Model) Context() int { return m.Cfg.MaxSeq }

// Norms lists each layer's self_attn_layer_norm and final_layer_norm
// (fairseq's names; there is no final decoder norm).
func (m *Model) Norms() []nn.NormSlot {
	s := make([]nn.NormSlot, 0, 2*len(m.Blocks))
	for i, b := range m.Blocks {
		p := fmt.Sprintf("decoder.layers.%d.", i)
		s = append(s, nn.NormSlot{Name: p + "self_attn_layer_norm", Norm: &b.N1},
			nn.NormSlot{Name: p + "final_layer_norm", Norm: &b.N2})
	}
	return s
}

// FoldSites folds self_attn_layer_norm into q_proj, k_proj and v_proj and
// final_layer_norm into fc1 (docs/method.md 2.1). With no final decoder
// norm the tied output needs no untying.
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	slots := m.Norms()
	var sites []nn.FoldSite
	for i, b := range m.Blocks {
		sites = append(sites,
			nn.FoldSite{Slot: slots[2*i], Into: []*nn.Linear{b.Attn.Q, b.Attn.K, b.Attn.V}},
			nn.FoldSite{Slot: slots[2*i+1], Into: []*nn.Linear{b.FC1}})
	}
	return sites, nil
}

// Folded records the folded layout (norm "none": New builds biased q/k/v).
func (m *Model) Folded() { m.Cfg.Norm = NormNone }

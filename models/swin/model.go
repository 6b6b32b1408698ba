// Package swin is slab's Swin family (docs/method.md 4.3): the original
// Swin Transformer (LayerNorm, shifted window softmax attention),
// Swin-PRepBN (RepBN norms), SLAB-Swin (PRepBN norms, simplified linear
// attention in stages 1-2) and FLatten-Swin (focused linear attention in
// stages 1-2, the baseline SLAB is compared with), plus small
// Fashion-MNIST variants of each.
//
// Design choices:
//
//   - The model is the backbone kit's four stages (models/backbone): each
//     block is a backbone.Block over a WindowMixer (shift, window
//     partition, attention, reverse), and stage i+1's Down is the
//     official layers.i.downsample (PatchMerging). Every stage's output is
//     kept (backbone.Stages) for multi-scale features.
//   - Parameters carry the official state-dict names (slab_swin.py,
//     swin_transformer.py, flatten_swin.py), so checkpoints map 1:1 through
//     models.LoadState; the recomputed buffers relative_position_index and
//     attn_mask are consumed by the family's aliases after a comparison
//     with the model's own (official.go).
//   - Every norm comes from cfg.NormSpec(); the model lists them as slots
//     and declares where each folds (FoldSites): the patch-embedding norm
//     into its conv, norm1 into qkv, norm2 into fc1, the merging norm into
//     its reduction (which gains a bias) and the final norm into the head.
//   - Inputs smaller than the network's side (Fashion-MNIST's 28 in a
//     32-pixel model) are zero-padded inside Forward, so InputShape is the
//     dataset's and the generic trainer and CLI need no special case.
//   - Buffers grow with tensor.Ensure and worker functions are bound once:
//     a steady-state Forward (and Forward + Backward) allocates nothing.
package swin

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Model is a Swin-family classifier. Fields are exported for tests and
// tools; use New to build one.
type Model struct {
	Cfg Config

	PatchEmbed *nn.PatchEmbed
	PatchNorm  nn.Norm
	Stages     backbone.Stages
	// Merges[i] is the official layers.i.downsample (Stages.List[i+1].Down).
	Merges []*PatchMerging
	Norm   nn.Norm
	Head   *nn.Linear

	pool nn.MeanTokens
	rng  *rand.Rand
	pcg  *rand.PCG

	params  []*nn.Param
	buffers []*nn.Buffer
	norms   []nn.NormSlot

	lastTrain bool
	batch     int
	padded    *tensor.Tensor
	shp       [4]int
	fmaps     []models.FeatureMap
}

// New builds a model with the official initialisation: Linears
// trunc-normal(0.02) with zero bias, relative position tables
// trunc-normal(0.02), the patch conv and the depthwise convs PyTorch's
// default uniform(±1/sqrt(fan_in)), positional encodings and FLatten's
// scale zeros, norms 1/0 (RepBN alpha 1). The same seed gives the same
// weights.
func New(cfg Config, seed uint64) (*Model, error) { return build(cfg, seed, true) }

// build is New; draw false leaves the parameters' random values out:
// every parameter is allocated (memory the OS has not provided yet, so
// not resident until written) for a load that overwrites them all
// (models.BuildBare).
func build(cfg Config, seed uint64, draw bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg}
	rng := nn.InitRand(draw, seed, 0x5717a11)
	spec := cfg.NormSpec()
	initLinear := func(l *nn.Linear) {
		nn.TruncNormal(l.Weight.W, 0.02, rng)
		if l.Bias != nil {
			l.Bias.W.Zero()
		}
	}

	C := cfg.Dim
	m.PatchEmbed = nn.NewPatchEmbed("patch_embed.proj", cfg.InChans, C, cfg.Patch)
	fanIn := float64(cfg.InChans * cfg.Patch * cfg.Patch)
	nn.Uniform(m.PatchEmbed.Weight.W, 1/math.Sqrt(fanIn), rng)
	nn.Uniform(m.PatchEmbed.Bias.W, 1/math.Sqrt(fanIn), rng)
	m.PatchNorm = spec.New("patch_embed.norm", C)

	total := 0
	for _, d := range cfg.Depths {
		total += d
	}
	blockIdx := 0
	for i, depth := range cfg.Depths {
		st := &backbone.Stage{}
		g, d, heads := cfg.StageGrid(i), cfg.StageDim(i), cfg.Heads[i]
		if i > 0 {
			pg, pd := cfg.StageGrid(i-1), cfg.StageDim(i-1)
			pm := newPatchMerging(fmt.Sprintf("layers.%d.downsample", i-1), pg, pg, pd, spec, cfg.Norm == nn.NormNone, cfg.Det)
			initLinear(pm.Reduction)
			m.Merges = append(m.Merges, pm)
			st.Down = pm
		}
		ws := cfg.Window(i)
		for j := range depth {
			p := fmt.Sprintf("layers.%d.blocks.%d.", i, j)
			var mx *WindowMixer
			if cfg.LinearStage(i) {
				var a attention
				var qkv, proj *nn.Linear
				var dwcW, dwcB *nn.Param
				if cfg.Linear == AttnFocused {
					f := nn.NewFocusedLinearAttention(p+"attn", d, heads, ws, ws, cfg.DWCKernel, cfg.Focusing, true)
					a, qkv, proj, dwcW, dwcB = f, f.QKV, f.Proj, f.DWCWeight, f.DWCBias
				} else {
					s := nn.NewSLA(p+"attn", d, heads, ws, ws, cfg.DWCKernel, true)
					a, qkv, proj, dwcW, dwcB = s, s.QKV, s.Proj, s.DWCWeight, s.DWCBias
				}
				initLinear(qkv)
				initLinear(proj)
				bound := 1 / float64(cfg.DWCKernel) // fan_in = 1·k·k
				nn.Uniform(dwcW.W, bound, rng)
				nn.Uniform(dwcB.W, bound, rng)
				mx = newWindowMixer(g, g, ws, cfg.Shift(i, j), cfg.Det, nil, a, qkv)
			} else {
				w := nn.NewWindowAttention(p+"attn", d, heads, ws, true)
				nn.TruncNormal(w.RelPos.Table.W, 0.02, rng)
				initLinear(w.QKV)
				initLinear(w.Proj)
				mx = newWindowMixer(g, g, ws, cfg.Shift(i, j), cfg.Det, w, nil, w.QKV)
			}
			mlp := nn.NewMLP(p+"mlp", d, d*cfg.MLPRatio)
			initLinear(mlp.FC1)
			initLinear(mlp.FC2)
			b := &backbone.Block{Norm1: spec.New(p+"norm1", d), Mixer: mx, Norm2: spec.New(p+"norm2", d), MLP: mlp}
			var rate float32 // torch.linspace(0, DropPath, total depth)
			if total > 1 {
				rate = cfg.DropPath * float32(blockIdx) / float32(total-1)
			}
			b.DP1.Rate, b.DP2.Rate = rate, rate
			st.Blocks = append(st.Blocks, b)
			blockIdx++
		}
		m.Stages.List = append(m.Stages.List, st)
	}
	last := cfg.StageDim(cfg.NumStages() - 1)
	m.Norm = spec.New("norm", last)
	m.Head = nn.NewLinear("head", last, cfg.Classes, true)
	initLinear(m.Head)
	m.pcg = rand.NewPCG(seed, 0xd709a7)
	m.rng = rand.New(m.pcg)
	m.collect()
	return m, nil
}

// collect lists parameters and buffers (official module order, with each
// stage's blocks before the merging that ends it).
func (m *Model) collect() {
	m.params, m.buffers = nil, nil
	add := func(mod nn.Module) {
		m.params = append(m.params, mod.Params()...)
		m.buffers = append(m.buffers, mod.Buffers()...)
	}
	add(m.PatchEmbed)
	add(m.PatchNorm)
	for i, st := range m.Stages.List {
		for _, b := range st.Blocks {
			add(b)
		}
		if i < len(m.Merges) {
			add(m.Merges[i])
		}
	}
	add(m.Norm)
	add(m.Head)
}

// Params lists every learnable parameter under its official name.
func (m *Model) Params() []*nn.Param { return m.params }

// Buffers lists BN running statistics, num_batches_tracked and the
// LinearNorm counters.
func (m *Model) Buffers() []*nn.Buffer { return m.buffers }

// SetDropPathSeed reseeds the stream drop path draws from.
func (m *Model) SetDropPathSeed(seed uint64) { m.pcg.Seed(seed, 0xd709a7) }

// Family is "swin".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// InputShape is (InChans, side, side) of the images Forward accepts.
func (m *Model) InputShape() (c, h, w int) { return m.Cfg.InChans, m.Cfg.Input(), m.Cfg.Input() }

// Classes is the head width.
func (m *Model) Classes() int { return m.Cfg.Classes }

func (m *Model) shape(dims ...int) []int {
	n := copy(m.shp[:], dims)
	return m.shp[:n]
}

// Blocks returns stage i's blocks (official layers.i.blocks).
func (m *Model) Blocks(i int) []*backbone.Block { return m.Stages.List[i].Blocks }

// Mixer returns the window mixer of block j of stage i.
func (m *Model) Mixer(i, j int) *WindowMixer { return m.Stages.List[i].Blocks[j].Mixer.(*WindowMixer) }

func (m *Model) checkInput(x *tensor.Tensor) (int, error) {
	c := &m.Cfg
	s := c.Input()
	if x == nil {
		return 0, fmt.Errorf("swin: %s: nil input", c.Name)
	}
	if c.Det {
		if len(x.Shape) != 4 || x.Shape[0] < 1 {
			return 0, fmt.Errorf("swin: %s: input shape %v, want [B,%d,H,W]", c.Name, x.Shape, c.InChans)
		}
		if err := m.CheckFeatureInput(x.Shape[1], x.Shape[2], x.Shape[3]); err != nil {
			return 0, err
		}
	} else if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != c.InChans || x.Shape[2] != s || x.Shape[3] != s {
		return 0, fmt.Errorf("swin: %s: input shape %v, want [B,%d,%d,%d] with B >= 1 (the classification model's windows and positional encodings fix its input size)", c.Name, x.Shape, c.InChans, s, s)
	}
	if len(x.Data) != tensor.Numel(x.Shape) {
		return 0, fmt.Errorf("swin: %s: input has %d values for shape %v", c.Name, len(x.Data), x.Shape)
	}
	return x.Shape[0], nil
}

// pad centres images of side Input() in zero images of side ImgSize.
func (m *Model) pad(x *tensor.Tensor, b int) *tensor.Tensor {
	c := &m.Cfg
	s, S, ch := c.Input(), c.ImgSize, c.InChans
	if s == S {
		return x
	}
	p := tensor.Ensure(&m.padded, m.shape(b, ch, S, S)...)
	p.Zero()
	off := (S - s) / 2
	for k := range b * ch {
		src := x.Data[k*s*s : (k+1)*s*s]
		dst := p.Data[k*S*S : (k+1)*S*S]
		for r := range s {
			copy(dst[(r+off)*S+off:(r+off)*S+off+s], src[r*s:(r+1)*s])
		}
	}
	return p
}

// Forward maps images [B,InChans,Input,Input] to logits [B,Classes]. In
// Train mode it advances every LinearNorm schedule by one call and uses
// batch statistics and drop path; Recalibrate updates BN running
// statistics only. The result is owned by the model and valid until the
// next Forward.
func (m *Model) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	B, err := m.checkInput(x)
	if err != nil {
		return nil, err
	}
	m.lastTrain, m.batch = mode.Training(), B
	img := m.pad(x, B)
	h := m.PatchNorm.Forward(m.PatchEmbed.Forward(img), mode)
	p := m.Cfg.Patch
	h, _ = m.Stages.Forward(h, backbone.Grid{H: img.Shape[2] / p, W: img.Shape[3] / p}, mode, m.rng)
	h = m.Norm.Forward(h, mode)
	return m.Head.Forward(m.pool.Forward(h)), nil
}

// Features returns each stage's output [B, H_i·W_i, C_i] of the last
// Forward (strides Patch·2^i) with its grid, owned by the model.
func (m *Model) Features() ([]*tensor.Tensor, []backbone.Grid) { return m.Stages.Features() }

// CheckFeatureInput reports whether FeatureMaps takes c x h x w images:
// the classification models take their own size only, the detection
// layout (Config.Det) any sides that are multiples of Config.Multiple().
func (m *Model) CheckFeatureInput(c, h, w int) error {
	cfg := &m.Cfg
	if c != cfg.InChans {
		return fmt.Errorf("swin: %s: %d input channels, want %d", cfg.Name, c, cfg.InChans)
	}
	if cfg.Det {
		k := cfg.Multiple()
		if h < k || w < k || h%k != 0 || w%k != 0 || h > maxImgSize || w > maxImgSize {
			return fmt.Errorf("swin: %s: input %dx%d: the detection layout takes sides that are multiples of %d (patch %d, three 2x merges), from %d to %d", cfg.Name, h, w, k, cfg.Patch, k, maxImgSize)
		}
		return nil
	}
	if s := cfg.Input(); h != s || w != s {
		return fmt.Errorf("swin: %s: input %dx%d: this classification model takes %dx%d images only (its windows and positional encodings are laid out for that size); features of other sizes need the detection layout (a config with Det set, e.g. slab_swin_tiny_det), which pads each stage to its window", cfg.Name, h, w, s, s)
	}
	return nil
}

// FeatureMaps runs an eval-mode forward of x [B,C,H,W] and returns the four
// stage outputs as [B, C_i, H_i, W_i] (strides Patch·2^i: 4/8/16/32 at
// patch 4), the layout the official detection backbone hands its neck
// (without the detector's own output norms, which are the detector's
// parameters). The maps are owned by the model until its next FeatureMaps.
func (m *Model) FeatureMaps(x *tensor.Tensor) ([]models.FeatureMap, error) {
	if _, err := m.Forward(x, nn.Eval); err != nil {
		return nil, err
	}
	feats, grids := m.Features()
	if len(m.fmaps) != len(feats) {
		m.fmaps = make([]models.FeatureMap, len(feats))
	}
	for i, f := range feats {
		b, n, c := f.Shape[0], f.Shape[1], f.Shape[2]
		t := tensor.Ensure(&m.fmaps[i].T, b, c, grids[i].H, grids[i].W)
		for k := range b {
			// tokens [n, c] -> channels [c, n]
			kernels.TransposeScale(t.Data[k*c*n:(k+1)*c*n], n, f.Data[k*n*c:(k+1)*n*c], c, n, c, 1)
		}
		m.fmaps[i].Stride = m.Cfg.Patch << i
	}
	return m.fmaps, nil
}

// Backward differentiates the last Forward, which must have been in
// training mode: gradients are ACCUMULATED into Params()[i].G. dlogits is
// d(loss)/d(logits) [B,Classes].
func (m *Model) Backward(dlogits *tensor.Tensor) {
	if !m.lastTrain {
		panic("swin: Backward without a preceding training-mode Forward")
	}
	if dlogits.Size() != m.batch*m.Cfg.Classes {
		panic(fmt.Sprintf("swin: Backward: dlogits %v, want [%d,%d]", dlogits.Shape, m.batch, m.Cfg.Classes))
	}
	dh := m.pool.Backward(m.Head.Backward(dlogits))
	dh = m.Stages.Backward(m.Norm.Backward(dh))
	m.PatchEmbed.Backward(m.PatchNorm.Backward(dh))
}

// Norms lists patch_embed.norm, layers.i.blocks.j.norm1/norm2,
// layers.i.downsample.norm and the final norm (built once).
func (m *Model) Norms() []nn.NormSlot {
	if m.norms == nil {
		m.norms = append(m.norms, nn.NormSlot{Name: "patch_embed.norm", Norm: &m.PatchNorm})
		for i, st := range m.Stages.List {
			for j, b := range st.Blocks {
				m.norms = append(m.norms, b.NormSlots(fmt.Sprintf("layers.%d.blocks.%d.", i, j))...)
			}
			if i < len(m.Merges) {
				m.norms = append(m.norms, nn.NormSlot{Name: fmt.Sprintf("layers.%d.downsample.norm", i), Norm: &m.Merges[i].Norm})
			}
		}
		m.norms = append(m.norms, nn.NormSlot{Name: "norm", Norm: &m.Norm})
	}
	return m.norms
}

// FoldSites folds the patch-embedding norm into its conv (exactly, the
// alpha·bias term included: docs/method.md 2.1), norm1 into the attention's
// qkv (its only reader: partition and shift permute tokens, not channels),
// norm2 into mlp.fc1, each merging norm into its reduction (which gains a
// bias) and the final norm into the head (mean pooling is linear per
// channel).
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	slots := m.Norms()
	sites := []nn.FoldSite{{Slot: slots[0], FromWeight: m.PatchEmbed.Weight, FromBias: m.PatchEmbed.Bias}}
	k := 1
	for i, st := range m.Stages.List {
		for _, b := range st.Blocks {
			mlp, ok := b.MLP.(*nn.MLP)
			if !ok {
				return nil, fmt.Errorf("swin: %s: MLP %T has no fc1", slots[k+1].Name, b.MLP)
			}
			sites = append(sites, nn.FoldSite{Slot: slots[k], Into: []*nn.Linear{b.Mixer.(*WindowMixer).QKV}},
				nn.FoldSite{Slot: slots[k+1], Into: []*nn.Linear{mlp.FC1}})
			k += 2
		}
		if i < len(m.Merges) {
			sites = append(sites, nn.FoldSite{Slot: slots[k], Into: []*nn.Linear{m.Merges[i].Reduction}})
			k++
		}
	}
	return append(sites, nn.FoldSite{Slot: slots[k], Into: []*nn.Linear{m.Head}}), nil
}

// Folded records that the norms are gone (Norm "none": New then builds the
// reductions with bias, so the folded checkpoint reloads) and re-lists the
// parameters, which now include the reductions' biases.
func (m *Model) Folded() {
	m.Cfg.Norm = nn.NormNone
	m.collect()
}

// DropGrads releases every gradient buffer of an inference-only model.
func (m *Model) DropGrads() {
	for _, p := range m.params {
		p.G = nil
	}
}

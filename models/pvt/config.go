package pvt

import (
	"fmt"
	"strconv"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
)

// Config describes one PVT-family model (docs/method.md 4.2). The zero
// value is not valid; start from a registered name (models.Lookup).
type Config struct {
	// Name is the registry name the config came from (informational).
	Name string
	// ImgSize is the side the network works on; InputSize the side of the
	// images Forward accepts (0: ImgSize), zero-padded evenly inside
	// Forward (Fashion-MNIST's 28 -> 32).
	ImgSize, InputSize int
	InChans, Classes   int
	// Per stage: the patch embedding's kernel = stride, width, heads, MLP
	// ratio, depth and the spatial reduction ratio of 'S' stages.
	Patches, Dims, Heads, MLPRatios, Depths, SRRatios []int
	// Stages has one letter per stage: 'L' SLA over all tokens (separate q
	// and kv Linears, positional encoding, DWC), 'S' spatial-reduction
	// softmax attention (docs/method.md 4.5).
	Stages string
	// Norm selects every norm: "layernorm", "repbn", "prepbn" (LinearNorm),
	// "batchnorm" or "none" (folded deploy model).
	Norm string
	// LNEps is the LayerNorm epsilon (1e-6 in slab_pvt.py); Step and Warm
	// are LinearNorm's T and warm-up calls.
	LNEps      float32
	Step, Warm int64
	// DWCKernel is SLA's depthwise conv side (5).
	DWCKernel int
	// DropPath is the largest drop-path rate (linspace over all blocks).
	DropPath float32
}

// BNEps and BNMomentum are PyTorch's BatchNorm1d defaults (docs/method.md 1.1).
const (
	BNEps      = 1e-5
	BNMomentum = 0.1
)

const maxImgSize = 4096

func pvt224(name, stages, norm string, depths []int, dp float32) Config {
	return Config{Name: name, ImgSize: 224, InChans: 3, Classes: 1000,
		Patches: []int{4, 2, 2, 2}, Dims: []int{64, 128, 320, 512}, Heads: []int{1, 2, 5, 8},
		MLPRatios: []int{8, 8, 4, 4}, Depths: depths, SRRatios: []int{8, 4, 2, 1},
		Stages: stages, Norm: norm, LNEps: 1e-6, Step: 300000, DWCKernel: 5, DropPath: dp}
}

// mini32 is a Fashion-MNIST variant: 28x28 padded to 32x32, patches
// 2,2,2,2 (maps 16, 8, 4, 2), widths 16-32-64-128 (head width 16), spatial
// reduction 4, 2, 2, 1 in 'S' stages (ratios > 1 in three stages).
func mini32(name, stages, norm string) Config {
	return Config{Name: name, ImgSize: 32, InputSize: 28, InChans: 1, Classes: 10,
		Patches: []int{2, 2, 2, 2}, Dims: []int{16, 32, 64, 128}, Heads: []int{1, 2, 4, 8},
		MLPRatios: []int{4, 4, 4, 4}, Depths: []int{2, 2, 2, 2}, SRRatios: []int{4, 2, 2, 1},
		Stages: stages, Norm: norm, LNEps: 1e-6, Step: 1000, DWCKernel: 5}
}

// registry: SLAB-PVT is LLLL with LinearNorm, PVT-PRepBN SSSS (sr
// 8/4/2/1) with LinearNorm, T = 300000 as slab_pvt.py's default, drop path
// 0/0.1/0.3 (docs/method.md 4.2, 1.3, 5); pvt_tiny/small are the SSSS
// layout with LayerNorm, the twin a user would otherwise run. The minis
// train on Fashion-MNIST (Step is a placeholder the trainer overrides).
var registry = func() map[string]Config {
	r := map[string]Config{}
	add := func(c Config) { r[c.Name] = c }
	t, s, m := []int{2, 2, 2, 2}, []int{3, 4, 6, 3}, []int{3, 4, 18, 3}
	add(pvt224("slab_pvt_tiny", "LLLL", nn.NormPRepBN, t, 0))
	add(pvt224("slab_pvt_small", "LLLL", nn.NormPRepBN, s, 0.1))
	add(pvt224("slab_pvt_medium", "LLLL", nn.NormPRepBN, m, 0.3))
	add(pvt224("pvt_tiny_prepbn", "SSSS", nn.NormPRepBN, t, 0))
	add(pvt224("pvt_small_prepbn", "SSSS", nn.NormPRepBN, s, 0.1))
	add(pvt224("pvt_medium_prepbn", "SSSS", nn.NormPRepBN, m, 0.3))
	add(pvt224("pvt_tiny", "SSSS", nn.NormLayerNorm, t, 0))
	add(pvt224("pvt_small", "SSSS", nn.NormLayerNorm, s, 0.1))
	add(mini32("slab_pvt_mini_32", "LLLL", nn.NormPRepBN))
	add(mini32("pvt_mini_prepbn_32", "SSSS", nn.NormPRepBN))
	add(mini32("pvt_mini_32", "SSSS", nn.NormLayerNorm))
	return r
}()

// Input is the side of the images Forward accepts.
func (c *Config) Input() int {
	if c.InputSize > 0 {
		return c.InputSize
	}
	return c.ImgSize
}

// NumStages is len(Depths).
func (c *Config) NumStages() int { return len(c.Depths) }

// StageGrid is stage i's map side.
func (c *Config) StageGrid(i int) int {
	g := c.ImgSize
	for k := 0; k <= i; k++ {
		g /= c.Patches[k]
	}
	return g
}

// Ratio is stage i's spatial reduction: SRRatios[i] in 'S' stages, 1 in
// 'L' stages.
func (c *Config) Ratio(i int) int {
	if c.Stages[i] == 'L' {
		return 1
	}
	return c.SRRatios[i]
}

// Validate reports the first inconsistency, naming the field at fault.
func (c *Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "config"
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("pvt: %s: "+format, append([]any{name}, a...)...)
	}
	bs := []models.Bound{models.Dim("ImgSize", c.ImgSize, models.MaxImgSize), models.Dim("InputSize", c.InputSize, models.MaxImgSize),
		models.Dim("InChans", c.InChans, models.MaxChannels), models.Dim("Classes", c.Classes, models.MaxClasses),
		models.Dim("stages", len(c.Depths), models.MaxStages), models.Dim("DWCKernel", c.DWCKernel, models.MaxPatch)}
	bs = append(bs, models.Dims("Patches", c.Patches, models.MaxPatch)...)
	bs = append(bs, models.Dims("Dims", c.Dims, models.MaxWidth)...)
	bs = append(bs, models.Dims("Heads", c.Heads, models.MaxHeads)...)
	bs = append(bs, models.Dims("MLPRatios", c.MLPRatios, models.MaxMLPRatio)...)
	bs = append(bs, models.Dims("Depths", c.Depths, models.MaxDepth)...)
	bs = append(bs, models.Dims("SRRatios", c.SRRatios, models.MaxPatch)...)
	if err := models.CheckBounds(bs...); err != nil {
		return fail("%v", err)
	}
	n := len(c.Depths)
	switch {
	case c.ImgSize <= 0 || c.ImgSize > maxImgSize || c.InChans <= 0 || c.Classes <= 0:
		return fail("ImgSize %d (at most %d), InChans %d, Classes %d must be positive", c.ImgSize, maxImgSize, c.InChans, c.Classes)
	case c.InputSize < 0 || c.InputSize > c.ImgSize || (c.ImgSize-c.Input())%2 != 0:
		return fail("InputSize %d must be in [0, ImgSize %d] and pad evenly", c.InputSize, c.ImgSize)
	case n == 0 || len(c.Patches) != n || len(c.Dims) != n || len(c.Heads) != n || len(c.MLPRatios) != n || len(c.SRRatios) != n || len(c.Stages) != n:
		return fail("Patches %v, Dims %v, Heads %v, MLPRatios %v, Depths %v, SRRatios %v and Stages %q need one entry per stage", c.Patches, c.Dims, c.Heads, c.MLPRatios, c.Depths, c.SRRatios, c.Stages)
	case c.DropPath < 0 || c.DropPath >= 1:
		return fail("DropPath %g outside [0, 1)", c.DropPath)
	}
	g := c.ImgSize
	for i := range n {
		p := c.Patches[i]
		if p <= 0 || g%p != 0 {
			return fail("stage %d: patch %d does not tile its %dx%d input map", i+1, p, g, g)
		}
		g /= p
		d, h := c.Dims[i], c.Heads[i]
		switch {
		case c.Depths[i] <= 0 || h <= 0 || d%h != 0 || c.MLPRatios[i] <= 0:
			return fail("stage %d: depth %d, heads %d, MLP ratio %d must be positive and the heads divide its width %d", i+1, c.Depths[i], h, c.MLPRatios[i], d)
		}
		switch c.Stages[i] {
		case 'L':
			if c.DWCKernel <= 0 || c.DWCKernel%2 == 0 {
				return fail("DWCKernel %d must be odd and positive", c.DWCKernel)
			}
		case 'S':
			if r := c.SRRatios[i]; r <= 0 || g%r != 0 {
				return fail("stage %d: spatial reduction %d does not tile its %dx%d map", i+1, r, g, g)
			}
		default:
			return fail("Stages %q: letter %q of stage %d is not L (SLA) or S (spatial-reduction softmax)", c.Stages, c.Stages[i], i+1)
		}
	}
	if err := c.NormSpec().Validate(); err != nil {
		return fail("%v", err)
	}
	return nil
}

// ModelName is the registry name the config came from.
func (c *Config) ModelName() string { return c.Name }

// SetModelName records the name a model was looked up by.
func (c *Config) SetModelName(n string) { c.Name = n }

// Set changes one option: "norm" (layernorm, repbn, prepbn, batchnorm,
// none), "size" (only the model's own input side: position embeddings
// fix it) and "drop-path".
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		return backbone.SetNorm(value, &c.Norm, &c.Step, &c.LNEps, 1e-6)
	case "size":
		n, err := strconv.Atoi(value)
		if err != nil || n != c.Input() {
			return fmt.Errorf("size %q: %s takes only %dx%d images (its position embeddings are laid out for that size)", value, c.Name, c.Input(), c.Input())
		}
	case "drop-path":
		r, err := backbone.ParseDropPath(value)
		if err != nil {
			return err
		}
		c.DropPath = r
	default:
		return fmt.Errorf("the pvt family has no option %q (it has norm, size, drop-path)", option)
	}
	return nil
}

// Get returns the value of an option Set knows.
func (c *Config) Get(option string) string {
	switch option {
	case "norm":
		return c.Norm
	case "attn":
		return backbone.AttnOfStages(c.Stages)
	case "size":
		return strconv.Itoa(c.Input())
	case "drop-path":
		return backbone.FormatDropPath(c.DropPath)
	}
	return ""
}

// Summary describes the shape in one line.
func (c *Config) Summary() string {
	pad := ""
	if c.Input() != c.ImgSize {
		pad = fmt.Sprintf(" (zero-padded from %d)", c.Input())
	}
	sr := make([]int, c.NumStages())
	for i := range sr {
		sr[i] = c.Ratio(i)
	}
	return fmt.Sprintf("norm %s, stages %s, %dx%d input%s, patches %v, dims %v, depths %v, heads %v, sr %v",
		c.Norm, c.Stages, c.ImgSize, c.ImgSize, pad, c.Patches, c.Dims, c.Depths, c.Heads, sr)
}

// NormSpec is the spec of every norm of the model.
func (c *Config) NormSpec() nn.NormSpec {
	return nn.NormSpec{Kind: c.Norm, Eps: c.LNEps, BNEps: BNEps, BNMomentum: BNMomentum,
		Warm: c.Warm, Step: c.Step, NoCopy: true}
}

func (c *Config) normParams(dim int64) int64 {
	switch c.Norm {
	case nn.NormLayerNorm, nn.NormBatchNorm:
		return 2 * dim
	case nn.NormRepBN:
		return 2*dim + 1
	case nn.NormPRepBN:
		return 4*dim + 1
	}
	return 0
}

// ParamCount counts the parameters New builds (PRepBN's LayerNorm branch
// included), as PyTorch counts the official models.
func (c *Config) ParamCount() int64 {
	var n int64
	prev := int64(c.InChans)
	for i := range c.Depths {
		C, p, g := int64(c.Dims[i]), int64(c.Patches[i]), int64(c.StageGrid(i))
		n += prev*p*p*C + C + c.normParams(C) + g*g*C // patch_embed{i}, pos_embed{i}
		hid := C * int64(c.MLPRatios[i])
		blk := 2*c.normParams(C) + 3*C*C + 3*C + C*C + C + C*hid + hid + hid*C + C
		if c.Stages[i] == 'L' {
			d, k := C/int64(c.Heads[i]), int64(c.DWCKernel)
			blk += g*g*C + d*k*k + d
		} else if r := int64(c.Ratio(i)); r > 1 {
			blk += C*C*r*r + C + c.normParams(C)
		}
		n += int64(c.Depths[i]) * blk
		prev = C
	}
	return n + prev*int64(c.Classes) + int64(c.Classes)
}

// FLOPs is FLOPsByLayer's total for one image.
func (c *Config) FLOPs() int64 {
	var t int64
	for _, v := range c.FLOPsByLayer() {
		t += v
	}
	return t
}

// FLOPsByLayer counts one eval-mode forward of one image by layer type
// (a multiply-add is 2): "linear" (q, kv, proj, fc1, fc2, head), "conv"
// (patch embeddings, spatial reductions, SLA's DWC), "attention" (between
// the projections), "norm" (LayerNorm 7 flops per element, affine norms
// 2), "activation" (GELU) and "add" (residuals, position embeddings,
// pooling).
func (c *Config) FLOPsByLayer() map[string]int64 {
	f := map[string]int64{}
	var perNorm int64
	switch c.Norm {
	case nn.NormLayerNorm:
		perNorm = 7
	case nn.NormRepBN, nn.NormPRepBN, nn.NormBatchNorm:
		perNorm = 2
	}
	prev := int64(c.InChans)
	for i := range c.Depths {
		C, p, g := int64(c.Dims[i]), int64(c.Patches[i]), int64(c.StageGrid(i))
		N := g * g
		f["conv"] += 2*N*C*prev*p*p + N*C
		f["norm"] += perNorm * N * C
		f["add"] += N * C
		h := int64(c.Heads[i])
		d := C / h
		hid := C * int64(c.MLPRatios[i])
		for range c.Depths[i] {
			f["linear"] += 2*N*C*C + N*C + 2*N*C*C + N*C + 2*N*C*hid + hid*N + 2*N*hid*C + N*C
			if c.Stages[i] == 'L' {
				f["linear"] += 2*N*C*2*C + 2*N*C
				k := int64(c.DWCKernel)
				f["attention"] += 3*N*C + h*(4*N*d*d+3*N*d+2*N) + N*C
				f["conv"] += h * (2*N*d*k*k + N*d)
			} else {
				r := int64(c.Ratio(i))
				M := N / (r * r)
				if r > 1 {
					f["conv"] += 2*M*C*C*r*r + M*C
					f["norm"] += perNorm * M * C
				}
				f["linear"] += 2*M*C*2*C + 2*M*C
				f["attention"] += h * (2*N*M*d + N*M + 4*N*M + 2*N*M*d)
			}
			f["norm"] += 2 * perNorm * N * C
			f["activation"] += N * hid
			f["add"] += 2 * N * C
		}
		prev = C
	}
	g := int64(c.StageGrid(c.NumStages() - 1))
	f["add"] += g * g * prev
	f["linear"] += 2*prev*int64(c.Classes) + int64(c.Classes)
	return f
}

// Family is the name this package registers.
const Family = "pvt"

func init() {
	named := map[string]models.Config{}
	for n, c := range registry {
		c := c
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskClassify,
		Doc:       "Pyramid Vision Transformers: SLAB-PVT (SLA in every stage), PVT-PRepBN and PVT (spatial-reduction softmax attention), four stages of strided patch embeddings",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			pc, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("pvt: config of type %T", c)
			}
			return build(*pc, seed, draw)
		},
	}, named)
}

// Activations counts the float32 values a forward keeps per image
// (models.ActivationCounter), rounded up: per block about 16 tensors of
// tokens x width, 4 of tokens x hidden and, in spatial-reduction softmax
// stages, two maps of tokens x reduced tokens per head; the padded input
// and each stage's patch embedding.
func (c *Config) Activations() int64 {
	var n int64
	for i := range c.Depths {
		g := int64(c.StageGrid(i))
		t, d := g*g, int64(c.Dims[i])
		per := 16*t*d + 4*t*d*int64(c.MLPRatios[i])
		if c.Stages[i] != 'L' {
			r := int64(c.Ratio(i))
			per += 2 * int64(c.Heads[i]) * t * max(t/(r*r), 1)
		}
		n += int64(c.Depths[i])*per + 4*t*d*int64(c.Patches[i])*int64(c.Patches[i])
	}
	img := int64(c.InChans) * int64(c.ImgSize) * int64(c.ImgSize)
	return n + 4*img + 4*int64(c.Classes)
}

package cswin

import (
	"fmt"
	"strconv"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
)

// Config describes one CSwin-family model (docs/method.md 4.4). The zero
// value is not valid; start from a registered name (models.Lookup).
type Config struct {
	// Name is the registry name the config came from (informational).
	Name string
	// ImgSize is the side the network works on; InputSize the side of the
	// images Forward accepts (0: ImgSize), zero-padded evenly inside
	// Forward (Fashion-MNIST's 28 -> 32).
	ImgSize, InputSize int
	InChans, Classes   int
	// StemKernel, StemStride and StemPad shape the stem convolution
	// (official: 7, 4, 2); stage merges are 3x3 stride 2 pad 1.
	StemKernel, StemStride, StemPad int
	// Dim is stage 1's width; stage i has Dim·2^i channels.
	Dim int
	// Depths, Heads and Splits give each stage's blocks, heads and stripe
	// width ('S' stages; a stripe covering the map is one global branch).
	Depths, Heads, Splits []int
	// Stages has one letter per stage: 'L' global SLA with DWC and LePE,
	// 'S' cross-shaped stripe softmax attention with LePE (docs/method.md 4.5).
	Stages string
	// MLPRatio is the MLP hidden width over the block width.
	MLPRatio int
	// Norm selects every norm: "layernorm", "repbn", "prepbn" (LinearNorm),
	// "batchnorm" or "none" (folded deploy model).
	Norm string
	// LNEps is the LayerNorm epsilon (1e-5 in slab_cswin.py); Step and Warm
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

func cswin224(name string, depths []int, dp float32) Config {
	return Config{Name: name, ImgSize: 224, InChans: 3, Classes: 1000, StemKernel: 7, StemStride: 4, StemPad: 2,
		Dim: 64, Depths: depths, Heads: []int{2, 4, 8, 16}, Splits: []int{1, 2, 7, 7}, Stages: "LLSS",
		MLPRatio: 4, Norm: nn.NormPRepBN, LNEps: 1e-5, Step: 120000, DWCKernel: 5, DropPath: dp}
}

// registry: SLAB-CSwin-T/S as slab_cswin.py builds them (LLSS, LinearNorm
// T = 120000; docs/method.md 4.4, 1.3). The mini trains on Fashion-MNIST:
// 28x28 padded to 32x32, a 3x3 stride-2 stem (maps 16, 8, 4, 2), widths
// 16-32-64-128 (head width 16), global SLA + LePE in stages 1-2, two
// stripe branches of width 2 on stage 3's 4x4 map, one global softmax
// window in stage 4 (Step is a placeholder the trainer overrides).
var registry = func() map[string]Config {
	r := map[string]Config{}
	add := func(c Config) { r[c.Name] = c }
	add(cswin224("slab_cswin_tiny", []int{2, 4, 18, 1}, 0.1))
	add(cswin224("slab_cswin_small", []int{2, 4, 32, 2}, 0.3))
	add(Config{Name: "slab_cswin_mini_32", ImgSize: 32, InputSize: 28, InChans: 1, Classes: 10,
		StemKernel: 3, StemStride: 2, StemPad: 1, Dim: 16, Depths: []int{1, 2, 2, 1}, Heads: []int{1, 2, 4, 8},
		Splits: []int{1, 2, 2, 2}, Stages: "LLSS", MLPRatio: 4, Norm: nn.NormPRepBN, LNEps: 1e-5, Step: 1000, DWCKernel: 5})
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

// StageDim is stage i's width, Dim·2^i.
func (c *Config) StageDim(i int) int { return c.Dim << i }

// StageGrid is stage i's map side: the stem's output, then halved (3x3
// stride 2 pad 1) by each merge.
func (c *Config) StageGrid(i int) int {
	g := kernels.ConvOutSize(c.ImgSize, c.StemKernel, c.StemStride, c.StemPad)
	for range i {
		g = kernels.ConvOutSize(g, 3, 2, 1)
	}
	return g
}

// Validate reports the first inconsistency, naming the field at fault.
func (c *Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "config"
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("cswin: %s: "+format, append([]any{name}, a...)...)
	}
	bs := []models.Bound{models.Dim("ImgSize", c.ImgSize, models.MaxImgSize), models.Dim("InputSize", c.InputSize, models.MaxImgSize),
		models.Dim("InChans", c.InChans, models.MaxChannels), models.Dim("Classes", c.Classes, models.MaxClasses),
		models.Dim("StemKernel", c.StemKernel, models.MaxPatch), models.Dim("StemStride", c.StemStride, models.MaxPatch), models.Dim("StemPad", c.StemPad, models.MaxPatch),
		models.Dim("Dim", c.Dim, models.MaxWidth), models.Dim("MLPRatio", c.MLPRatio, models.MaxMLPRatio),
		models.Dim("stages", len(c.Depths), models.MaxStages), models.Dim("DWCKernel", c.DWCKernel, models.MaxPatch)}
	bs = append(bs, models.Dims("Depths", c.Depths, models.MaxDepth)...)
	bs = append(bs, models.Dims("Heads", c.Heads, models.MaxHeads)...)
	bs = append(bs, models.Dims("Splits", c.Splits, models.MaxImgSize)...)
	if err := models.CheckBounds(bs...); err != nil {
		return fail("%v", err)
	}
	if len(c.Depths) > 0 && c.Dim<<(len(c.Depths)-1) > models.MaxWidth {
		return fail("stage %d width %d (Dim %d doubled per stage) is above its bound %d", len(c.Depths), c.Dim<<(len(c.Depths)-1), c.Dim, models.MaxWidth)
	}
	n := len(c.Depths)
	switch {
	case c.ImgSize <= 0 || c.ImgSize > maxImgSize || c.InChans <= 0 || c.Classes <= 0:
		return fail("ImgSize %d (at most %d), InChans %d, Classes %d must be positive", c.ImgSize, maxImgSize, c.InChans, c.Classes)
	case c.InputSize < 0 || c.InputSize > c.ImgSize || (c.ImgSize-c.Input())%2 != 0:
		return fail("InputSize %d must be in [0, ImgSize %d] and pad evenly", c.InputSize, c.ImgSize)
	case c.StemKernel <= 0 || c.StemStride <= 0 || c.StemPad < 0:
		return fail("stem kernel %d, stride %d, padding %d", c.StemKernel, c.StemStride, c.StemPad)
	case c.Dim <= 0 || c.MLPRatio <= 0:
		return fail("Dim %d and MLPRatio %d must be positive", c.Dim, c.MLPRatio)
	case n == 0 || len(c.Heads) != n || len(c.Splits) != n || len(c.Stages) != n:
		return fail("Depths %v, Heads %v, Splits %v and Stages %q need one entry per stage", c.Depths, c.Heads, c.Splits, c.Stages)
	case c.DropPath < 0 || c.DropPath >= 1:
		return fail("DropPath %g outside [0, 1)", c.DropPath)
	case c.StageGrid(n-1) < 1:
		return fail("a %dx%d input leaves no map for stage %d", c.ImgSize, c.ImgSize, n)
	}
	for i := range n {
		d, h, g, sw := c.StageDim(i), c.Heads[i], c.StageGrid(i), c.Splits[i]
		if c.Depths[i] <= 0 || h <= 0 || d%h != 0 {
			return fail("stage %d: depth %d, heads %d must be positive and divide its width %d", i+1, c.Depths[i], h, d)
		}
		switch c.Stages[i] {
		case 'L':
			if c.DWCKernel <= 0 || c.DWCKernel%2 == 0 {
				return fail("DWCKernel %d must be odd and positive", c.DWCKernel)
			}
		case 'S':
			if sw <= 0 || (sw < g && (g%sw != 0 || h%2 != 0 || d%2 != 0)) {
				return fail("stage %d: stripe %d on a %dx%d map needs to divide it and an even head count (%d)", i+1, sw, g, g, h)
			}
		default:
			return fail("Stages %q: letter %q of stage %d is not L (SLA) or S (stripe softmax)", c.Stages, c.Stages[i], i+1)
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
// none), "size" (only the model's own input side: SLA's positional
// encodings fix it) and "drop-path".
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		return backbone.SetNorm(value, &c.Norm, &c.Step, &c.LNEps, 1e-5)
	case "size":
		n, err := strconv.Atoi(value)
		if err != nil || n != c.Input() {
			return fmt.Errorf("size %q: %s takes only %dx%d images (its positional encodings are laid out for that size)", value, c.Name, c.Input(), c.Input())
		}
	case "drop-path":
		r, err := backbone.ParseDropPath(value)
		if err != nil {
			return err
		}
		c.DropPath = r
	default:
		return fmt.Errorf("the cswin family has no option %q (it has norm, size, drop-path)", option)
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
	return fmt.Sprintf("norm %s, stages %s, %dx%d input%s, stem %dx%d/%d, dim %d, depths %v, heads %v, stripes %v",
		c.Norm, c.Stages, c.ImgSize, c.ImgSize, pad, c.StemKernel, c.StemKernel, c.StemStride, c.Dim, c.Depths, c.Heads, c.Splits)
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

// branches is the number of stripe branches of stage i ('S' stages).
func (c *Config) branches(i int) int {
	if c.Splits[i] >= c.StageGrid(i) {
		return 1
	}
	return 2
}

// ParamCount counts the parameters New builds (PRepBN's LayerNorm branch
// and SLA's unused scale included), as PyTorch counts the official models.
func (c *Config) ParamCount() int64 {
	C := int64(c.Dim)
	n := int64(c.InChans*c.StemKernel*c.StemKernel)*C + C + c.normParams(C)
	for i := range c.Depths {
		d, g := int64(c.StageDim(i)), int64(c.StageGrid(i))
		if i > 0 {
			n += d/2*9*d + d + c.normParams(d) // merge{i}
		}
		hid := d * int64(c.MLPRatio)
		blk := 2*c.normParams(d) + 3*d*d + 3*d + d*d + d + d*hid + hid + hid*d + d
		if c.Stages[i] == 'L' {
			hd, k := d/int64(c.Heads[i]), int64(c.DWCKernel)
			blk += g*g*d + hd*k*k + hd + 9*d + d + d // positional_encoding, dwc, get_v, scale
		} else {
			blk += 10 * d // get_v of one branch over C or two over C/2
		}
		n += int64(c.Depths[i]) * blk
	}
	last := int64(c.StageDim(c.NumStages() - 1))
	return n + c.normParams(last) + last*int64(c.Classes) + int64(c.Classes)
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
// (a multiply-add is 2): "linear" (qkv, proj, fc1, fc2, head), "conv"
// (stem, merges, DWC, LePE), "attention" (between qkv and proj), "norm"
// (LayerNorm 7 flops per element, affine norms 2), "activation" (GELU),
// "add" (residuals, pooling).
func (c *Config) FLOPsByLayer() map[string]int64 {
	f := map[string]int64{}
	var perNorm int64
	switch c.Norm {
	case nn.NormLayerNorm:
		perNorm = 7
	case nn.NormRepBN, nn.NormPRepBN, nn.NormBatchNorm:
		perNorm = 2
	}
	C := int64(c.Dim)
	g0 := int64(c.StageGrid(0))
	f["conv"] = 2*g0*g0*C*int64(c.InChans*c.StemKernel*c.StemKernel) + g0*g0*C
	f["norm"] = perNorm * g0 * g0 * C
	k := int64(c.DWCKernel)
	for i := range c.Depths {
		d, g, h := int64(c.StageDim(i)), int64(c.StageGrid(i)), int64(c.Heads[i])
		N, hd, hid := g*g, d/h, d*int64(c.MLPRatio)
		if i > 0 {
			f["conv"] += 2*N*d*(d/2)*9 + N*d
			f["norm"] += perNorm * N * d
		}
		for range c.Depths[i] {
			f["linear"] += 2*N*d*3*d + 3*N*d + 2*N*d*d + N*d + 2*N*d*hid + N*hid + 2*N*hid*d + N*d
			f["conv"] += 2*N*d*9 + 2*N*d // LePE and its add
			if c.Stages[i] == 'L' {
				f["attention"] += 3*N*d + h*(4*N*hd*hd+3*N*hd+2*N) + N*d
				f["conv"] += h * (2*N*hd*k*k + N*hd)
			} else {
				n := int64(c.Splits[i]) * g // tokens per stripe
				if c.branches(i) == 1 {
					n = N
				}
				f["attention"] += (N / n) * h * (2*n*n*hd + n*n + 4*n*n + 2*n*n*hd) / int64(c.branches(i))
			}
			f["norm"] += 2 * perNorm * N * d
			f["activation"] += N * hid
			f["add"] += 2 * N * d
		}
	}
	last, g := int64(c.StageDim(c.NumStages()-1)), int64(c.StageGrid(c.NumStages()-1))
	f["norm"] += perNorm * g * g * last
	f["add"] += g * g * last
	f["linear"] += 2*last*int64(c.Classes) + int64(c.Classes)
	return f
}

// Family is the name this package registers.
const Family = "cswin"

func init() {
	named := map[string]models.Config{}
	for n, c := range registry {
		c := c
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskClassify,
		Doc:       "CSWin Transformers: SLAB-CSwin (global SLA with DWC and LePE in stages 1-2, cross-shaped stripe softmax attention after), a convolutional stem and strided merges",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			cc, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("cswin: config of type %T", c)
			}
			return build(*cc, seed, draw)
		},
	}, named)
}

// Activations counts the float32 values a forward keeps per image
// (models.ActivationCounter), rounded up: per block about 16 tensors of
// tokens x width, 4 of tokens x hidden and, in stripe softmax stages, two
// maps of tokens x stripe per head; the padded input and the stem's im2col.
func (c *Config) Activations() int64 {
	var n int64
	for i := range c.Depths {
		g := int64(c.StageGrid(i))
		t, d := g*g, int64(c.StageDim(i))
		per := 16*t*d + 4*t*d*int64(c.MLPRatio)
		if c.Stages[i] != 'L' {
			per += 2 * int64(c.Heads[i]) * t * g * int64(c.Splits[i])
		}
		n += int64(c.Depths[i])*per + 4*t*d
	}
	g := int64(c.StageGrid(0))
	stem := g * g * int64(c.InChans) * int64(c.StemKernel) * int64(c.StemKernel)
	img := int64(c.InChans) * int64(c.ImgSize) * int64(c.ImgSize)
	return n + 2*stem + 4*img + 4*int64(c.Classes)
}

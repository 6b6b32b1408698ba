package swin

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
)

// Config describes one Swin-family model (docs/method.md 4.3). The zero
// value is not valid; start from a registered name (models.Lookup) and
// change fields.
type Config struct {
	// Name is the registry name the config came from (informational).
	Name string
	// ImgSize is the side the network works on; InputSize the side of the
	// images Forward accepts (0: ImgSize). A smaller InputSize is zero-padded
	// evenly on all sides inside Forward (Fashion-MNIST's 28 -> 32), so the
	// model's InputShape stays the dataset's.
	ImgSize, InputSize int
	// Patch is the patch-embedding conv's kernel and stride, InChans the
	// image channels, Classes the head width.
	Patch, InChans, Classes int
	// Dim is stage 1's width; stage i has Dim·2^i channels.
	Dim int
	// Depths, Heads and Windows give each stage's blocks, attention heads
	// and window side. A window at least the stage's map side becomes one
	// window over the whole map with no shift (the official rule); otherwise
	// odd blocks shift by window/2 with the official mask.
	Depths, Heads, Windows []int
	// Stages has one letter per stage: 'L' linear attention (Linear says
	// which), 'S' Swin's window softmax attention with relative position
	// bias (docs/method.md 4.5).
	Stages string
	// Linear is the linear attention of 'L' stages: "sla" (SLAB, docs/method.md
	// 3.1) or "focused" (FLatten, 3.4).
	Linear string
	// MLPRatio is the MLP hidden width over the block width.
	MLPRatio int
	// Norm selects every norm (patch embedding, blocks, patch merging,
	// final): "layernorm", "repbn", "prepbn" (LinearNorm), "batchnorm" or
	// "none" (folded deploy model: the merging reduction then has a bias).
	Norm string
	// LNEps is the LayerNorm epsilon (1e-5 for Swin); Step and Warm are
	// LinearNorm's T and warm-up calls.
	LNEps      float32
	Step, Warm int64
	// DWCKernel is the linear attention's depthwise conv side (5); Focusing
	// is FLatten's power p (3).
	DWCKernel, Focusing int
	// DropPath is the largest drop-path rate; blocks use linspace(0,
	// DropPath, total depth) in order, as the official code.
	DropPath float32
	// Det selects the official detection backbone's layout: inputs of any
	// side that is a multiple of Patch·2^(stages-1) (ImgSize is then the
	// nominal side that checkpoints, FLOPs and InputShape refer to); every
	// block zero-pads its map to a multiple of its window after norm1 and
	// crops after attention, odd blocks shift by window/2 whatever the map
	// size, and linear attention ignores the shift mask (the official SLAB
	// detection code's SLA windows of 56 and 28).
	Det bool
}

// Attention kinds of Config.Linear and of the "attn" option.
const (
	AttnSLA     = "sla"
	AttnFocused = "focused"
	AttnSoftmax = "softmax"
)

// BNEps and BNMomentum are PyTorch's BatchNorm1d defaults, which every
// official RepBN uses (docs/method.md 1.1).
const (
	BNEps      = 1e-5
	BNMomentum = 0.1
)

// maxImgSize bounds ImgSize (sanity, not a memory promise).
const maxImgSize = 4096

func swin224(name string, dim int, depths, heads []int) Config {
	return Config{Name: name, ImgSize: 224, Patch: 4, InChans: 3, Classes: 1000, Dim: dim,
		Depths: depths, Heads: heads, MLPRatio: 4, LNEps: 1e-5, DWCKernel: 5, Focusing: 3}
}

// mini32 is a Fashion-MNIST variant: 28x28 images padded to 32x32, patch 2,
// widths 16-32-64-128 on maps 16, 8, 4, 2 (head width 16; widths of 32 and up
// cost four times the compute, more than this shared machine trains in the
// time we had).
func mini32(name, norm, stages, linear string, windows []int) Config {
	return Config{Name: name, ImgSize: 32, InputSize: 28, Patch: 2, InChans: 1, Classes: 10, Dim: 16,
		Depths: []int{2, 2, 2, 2}, Heads: []int{1, 2, 4, 8}, Windows: windows, Stages: stages, Linear: linear,
		MLPRatio: 4, Norm: norm, LNEps: 1e-5, Step: 1000, DWCKernel: 5, Focusing: 3}
}

// registry holds the named configurations. The 224 ones follow the
// official configs (docs/method.md 4.3, 1.3): SLAB-Swin is LLSS with window
// 56 (stages 1-2 one global SLA window each, stages 3-4 shifted window-7
// softmax) and LinearNorm T = 60000 everywhere; Swin-T-PRepBN is window-7
// softmax with bare RepBN (the official swin_tiny_repbn); Swin-T/S are the
// original LayerNorm models; FLatten-Swin is SLAB-Swin's layout with focused
// linear attention and LayerNorm. The mini ones train on Fashion-MNIST here:
// the SLAB one has global SLA in stages 1-2 (16x16 and 8x8 maps) and
// window-2 softmax in stages 3-4 (four windows in stage 3, whose odd block
// shifts by 1; one window in stage 4); its twins differ only in norm and
// attention (softmax twins use window 4 in stages 1-2: 16 and 4 windows,
// odd blocks shifted by 2). Step 1000 is a placeholder the trainer
// overrides.
var registry = func() map[string]Config {
	r := map[string]Config{}
	add := func(c Config) { r[c.Name] = c }
	t := []int{2, 2, 6, 2}
	s := []int{2, 2, 18, 2}
	h := []int{3, 6, 12, 24}
	hb := []int{4, 8, 16, 32}
	llss := []int{56, 56, 7, 7}
	w7 := []int{7, 7, 7, 7}

	for _, v := range []struct {
		name   string
		dim    int
		depths []int
		heads  []int
		dp     float32
	}{{"slab_swin_tiny", 96, t, h, 0.2}, {"slab_swin_small", 96, s, h, 0.3}, {"slab_swin_base", 128, s, hb, 0.5}} {
		c := swin224(v.name, v.dim, v.depths, v.heads)
		c.Windows, c.Stages, c.Linear, c.Norm, c.Step, c.DropPath = llss, "LLSS", AttnSLA, nn.NormPRepBN, 60000, v.dp
		add(c)
	}
	c := swin224("swin_tiny_prepbn", 96, t, h)
	c.Windows, c.Stages, c.Norm, c.DropPath = w7, "SSSS", nn.NormRepBN, 0.1
	add(c)
	c = swin224("swin_tiny", 96, t, h)
	c.Windows, c.Stages, c.Norm, c.DropPath = w7, "SSSS", nn.NormLayerNorm, 0.2
	add(c)
	c = swin224("swin_small", 96, s, h)
	c.Windows, c.Stages, c.Norm, c.DropPath = w7, "SSSS", nn.NormLayerNorm, 0.3
	add(c)
	c = swin224("flatten_swin_tiny", 96, t, h)
	c.Windows, c.Stages, c.Linear, c.Norm, c.DropPath = llss, "LLSS", AttnFocused, nn.NormLayerNorm, 0.2
	add(c)
	c = swin224("flatten_swin_small", 96, s, h)
	c.Windows, c.Stages, c.Linear, c.Norm, c.DropPath = llss, "LLSS", AttnFocused, nn.NormLayerNorm, 0.3
	add(c)

	global := []int{16, 8, 2, 2}
	local := []int{4, 4, 2, 2}
	add(mini32("slab_swin_mini_32", nn.NormPRepBN, "LLSS", AttnSLA, global))
	add(mini32("swin_mini_32", nn.NormLayerNorm, "SSSS", "", local))
	add(mini32("flatten_swin_mini_32", nn.NormLayerNorm, "LLSS", AttnFocused, global))
	add(mini32("swin_mini_prepbn_32", nn.NormPRepBN, "SSSS", "", local))

	// The detection backbone of SLAB-Swin-T (docs/method.md 7): windows 56,
	// 28, 7, 7 on maps padded to them, shifted odd blocks everywhere;
	// classification checkpoints of slab_swin_tiny load unchanged.
	c = r["slab_swin_tiny"]
	c.Name, c.Windows, c.Det, c.DropPath = "slab_swin_tiny_det", []int{56, 28, 7, 7}, true, 0.1
	add(c)
	return r
}()

// Input is the side of the images Forward accepts.
func (c *Config) Input() int {
	if c.InputSize > 0 {
		return c.InputSize
	}
	return c.ImgSize
}

// Grid is stage 1's map side.
func (c *Config) Grid() int { return c.ImgSize / c.Patch }

// NumStages is len(Depths).
func (c *Config) NumStages() int { return len(c.Depths) }

// StageDim is stage i's width, Dim·2^i.
func (c *Config) StageDim(i int) int { return c.Dim << i }

// StageGrid is stage i's map side.
func (c *Config) StageGrid(i int) int { return c.Grid() >> i }

// Window is stage i's effective window side: the map side when the
// configured window covers it (official SwinTransformerBlock); in the
// detection layout always the configured window (maps are padded to it).
func (c *Config) Window(i int) int {
	if c.Det {
		return c.Windows[i]
	}
	return min(c.Windows[i], c.StageGrid(i))
}

// Shift is the shift of block j of stage i: window/2 on odd blocks when
// the stage has more than one window (in the detection layout, on every
// odd block), else 0.
func (c *Config) Shift(i, j int) int {
	if j%2 == 0 || (!c.Det && c.Windows[i] >= c.StageGrid(i)) {
		return 0
	}
	return c.Window(i) / 2
}

// Multiple is the factor an input side must be a multiple of in the
// detection layout: the patch times the three halvings (32 for Swin).
func (c *Config) Multiple() int { return c.Patch << (c.NumStages() - 1) }

// LinearStage reports whether stage i uses linear attention.
func (c *Config) LinearStage(i int) bool { return c.Stages[i] == 'L' }

// Validate reports the first inconsistency, naming the field at fault.
func (c *Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "config"
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("swin: %s: "+format, append([]any{name}, a...)...)
	}
	bs := []models.Bound{models.Dim("ImgSize", c.ImgSize, models.MaxImgSize), models.Dim("InputSize", c.InputSize, models.MaxImgSize),
		models.Dim("Patch", c.Patch, models.MaxPatch), models.Dim("InChans", c.InChans, models.MaxChannels), models.Dim("Classes", c.Classes, models.MaxClasses),
		models.Dim("Dim", c.Dim, models.MaxWidth), models.Dim("MLPRatio", c.MLPRatio, models.MaxMLPRatio), models.Dim("stages", len(c.Depths), models.MaxStages),
		models.Dim("DWCKernel", c.DWCKernel, models.MaxPatch), models.Dim("Focusing", c.Focusing, models.MaxPatch)}
	bs = append(bs, models.Dims("Depths", c.Depths, models.MaxDepth)...)
	bs = append(bs, models.Dims("Heads", c.Heads, models.MaxHeads)...)
	bs = append(bs, models.Dims("Windows", c.Windows, models.MaxImgSize)...)
	if err := models.CheckBounds(bs...); err != nil {
		return fail("%v", err)
	}
	if len(c.Depths) > 0 && c.Dim<<(len(c.Depths)-1) > models.MaxWidth {
		return fail("stage %d width %d (Dim %d doubled per stage) is above its bound %d", len(c.Depths), c.Dim<<(len(c.Depths)-1), c.Dim, models.MaxWidth)
	}
	switch {
	case c.ImgSize <= 0 || c.ImgSize > maxImgSize || c.Patch <= 0 || c.InChans <= 0 || c.Classes <= 0:
		return fail("ImgSize %d (at most %d), Patch %d, InChans %d, Classes %d must all be positive", c.ImgSize, maxImgSize, c.Patch, c.InChans, c.Classes)
	case c.InputSize < 0 || c.InputSize > c.ImgSize || (c.ImgSize-c.Input())%2 != 0:
		return fail("InputSize %d must be in [0, ImgSize %d] and pad evenly (ImgSize - InputSize even)", c.InputSize, c.ImgSize)
	case c.ImgSize%c.Patch != 0:
		return fail("ImgSize %d is not a multiple of Patch %d", c.ImgSize, c.Patch)
	case c.Dim <= 0 || c.MLPRatio <= 0:
		return fail("Dim %d and MLPRatio %d must be positive", c.Dim, c.MLPRatio)
	case len(c.Depths) == 0 || len(c.Heads) != len(c.Depths) || len(c.Windows) != len(c.Depths) || len(c.Stages) != len(c.Depths):
		return fail("Depths %v, Heads %v, Windows %v and Stages %q need one entry per stage", c.Depths, c.Heads, c.Windows, c.Stages)
	case c.DropPath < 0 || c.DropPath >= 1:
		return fail("DropPath %g outside [0, 1)", c.DropPath)
	}
	if g := c.Grid(); g%(1<<(c.NumStages()-1)) != 0 {
		return fail("the %dx%d patch map does not halve %d times (ImgSize %d, Patch %d)", g, g, c.NumStages()-1, c.ImgSize, c.Patch)
	}
	hasLinear := false
	for i := range c.Depths {
		d, h, w := c.StageDim(i), c.Heads[i], c.Windows[i]
		switch {
		case c.Depths[i] <= 0 || h <= 0 || d%h != 0:
			return fail("stage %d: depth %d, heads %d must be positive and divide its width %d", i+1, c.Depths[i], h, d)
		case w <= 0 || (!c.Det && c.StageGrid(i)%c.Window(i) != 0):
			return fail("stage %d: window %d does not tile its %dx%d map", i+1, w, c.StageGrid(i), c.StageGrid(i))
		}
		switch c.Stages[i] {
		case 'L':
			hasLinear = true
		case 'S':
		default:
			return fail("Stages %q: letter %q of stage %d is not L (linear) or S (softmax)", c.Stages, c.Stages[i], i+1)
		}
	}
	if c.Det && (c.Input() != c.ImgSize || c.ImgSize%c.Multiple() != 0) {
		return fail("the detection layout pads no input (InputSize %d, ImgSize %d) and its nominal side must be a multiple of %d", c.InputSize, c.ImgSize, c.Multiple())
	}
	if hasLinear {
		switch c.Linear {
		case AttnSLA:
		case AttnFocused:
			if c.Focusing < 1 || c.Focusing > 6 {
				return fail("Focusing %d outside 1..6", c.Focusing)
			}
		default:
			return fail("Linear %q is not sla or focused (Stages %q has L stages)", c.Linear, c.Stages)
		}
		if c.DWCKernel <= 0 || c.DWCKernel%2 == 0 {
			return fail("DWCKernel %d must be odd and positive", c.DWCKernel)
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
// none), "attn" (sla or focused: the linear attention of L stages;
// softmax: every stage window softmax, L stages taking the window of the
// first S stage, else 7), "drop-path", and "size", which must be the
// model's own input side (the positional encodings of linear attention and
// the official classification models fix it).
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		return backbone.SetNorm(value, &c.Norm, &c.Step, &c.LNEps, 1e-5)
	case "attn":
		switch value {
		case AttnSLA, AttnFocused:
			if !strings.Contains(c.Stages, "L") {
				return fmt.Errorf("attn %q: %s has no linear-attention stage (stages %q)", value, c.Name, c.Stages)
			}
			c.Linear = value
		case AttnSoftmax:
			w := 7
			if i := strings.IndexByte(c.Stages, 'S'); i >= 0 {
				w = c.Windows[i]
			}
			ws := append([]int(nil), c.Windows...)
			for i := range ws {
				if c.Stages[i] == 'L' {
					ws[i] = w
				}
			}
			c.Windows, c.Stages, c.Linear = ws, strings.Repeat("S", len(c.Stages)), ""
		default:
			return fmt.Errorf("attn %q is not sla, focused or softmax", value)
		}
		if c.DWCKernel == 0 {
			c.DWCKernel = 5
		}
		if c.Focusing == 0 {
			c.Focusing = 3
		}
	case "size":
		n, err := strconv.Atoi(value)
		if c.Det && err == nil && n > 0 && n <= maxImgSize && n%c.Multiple() == 0 {
			c.ImgSize = n
			return nil
		}
		if c.Det {
			return fmt.Errorf("size %q: %s takes sides that are multiples of %d (up to %d)", value, c.Name, c.Multiple(), maxImgSize)
		}
		if err != nil || n != c.Input() {
			return fmt.Errorf("size %q: %s takes only %dx%d images (its windows and positional encodings are laid out for that size)", value, c.Name, c.Input(), c.Input())
		}
	case "drop-path":
		r, err := backbone.ParseDropPath(value)
		if err != nil {
			return err
		}
		c.DropPath = r
	default:
		return fmt.Errorf("the swin family has no option %q (it has norm, attn, size, drop-path)", option)
	}
	return nil
}

// Get returns the value of an option Set knows.
func (c *Config) Get(option string) string {
	switch option {
	case "norm":
		return c.Norm
	case "attn":
		if strings.Contains(c.Stages, "L") {
			return c.Linear
		}
		return AttnSoftmax
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
	lin := ""
	if strings.Contains(c.Stages, "L") {
		lin = " L=" + c.Linear
	}
	if c.Det {
		pad = fmt.Sprintf(" (nominal; detection layout: any sides that are multiples of %d, maps padded to the windows)", c.Multiple())
	}
	return fmt.Sprintf("norm %s, stages %s%s, %dx%d input%s, patch %d, dim %d, depths %v, heads %v, windows %v",
		c.Norm, c.Stages, lin, c.ImgSize, c.ImgSize, pad, c.Patch, c.Dim, c.Depths, c.Heads, c.effectiveWindows())
}

func (c *Config) effectiveWindows() []int {
	w := make([]int, len(c.Windows))
	for i := range w {
		w[i] = c.Window(i)
	}
	return w
}

// NormSpec is the spec of every norm of the model (docs/method.md 1.5: the
// patch-embedding, merging and final norms follow the block norms).
func (c *Config) NormSpec() nn.NormSpec {
	return nn.NormSpec{Kind: c.Norm, Eps: c.LNEps, BNEps: BNEps, BNMomentum: BNMomentum,
		Warm: c.Warm, Step: c.Step, NoCopy: true}
}

// normParams is the parameter count of one norm over dim channels.
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

// ParamCount counts the parameters New builds, PRepBN's LayerNorm branch
// included, as PyTorch counts the official models.
func (c *Config) ParamCount() int64 {
	C := int64(c.Dim)
	n := int64(c.InChans*c.Patch*c.Patch)*C + C + c.normParams(C) // patch_embed.proj, patch_embed.norm
	for i := range c.Depths {
		d := int64(c.StageDim(i))
		hid := d * int64(c.MLPRatio)
		blk := 2*c.normParams(d) + 3*d*d + 3*d + d*d + d + d*hid + hid + hid*d + d
		if c.LinearStage(i) {
			w, hd, k := int64(c.Window(i)), d/int64(c.Heads[i]), int64(c.DWCKernel)
			blk += w*w*d + hd*k*k + hd
			if c.Linear == AttnFocused {
				blk += d // scale
			}
		} else {
			t := int64(2*c.Window(i) - 1)
			blk += t * t * int64(c.Heads[i])
		}
		n += int64(c.Depths[i]) * blk
		if i < c.NumStages()-1 {
			n += c.normParams(4*d) + 4*d*2*d // downsample.norm, reduction
			if c.Norm == nn.NormNone {
				n += 2 * d // the folded reduction's bias
			}
		}
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

// Family is the name this package registers.
const Family = "swin"

func init() {
	named := map[string]models.Config{}
	for n, c := range registry {
		c := c
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskClassify,
		Doc:       "Swin Transformers: Swin, Swin-PRepBN, SLAB-Swin (SLA stages 1-2) and FLatten-Swin (focused linear attention), four stages with patch merging",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			sc, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("swin: config of type %T", c)
			}
			return build(*sc, seed, draw)
		},
		Aliases: aliases,
	}, named)
}

// Activations counts the float32 values a forward keeps per image
// (models.ActivationCounter), rounded up: per block about 16 tensors of
// tokens x width, 4 of tokens x hidden and, in window softmax stages, two
// window-by-window maps per head and token; the padded input and the patch
// embedding.
func (c *Config) Activations() int64 {
	var n int64
	for i := range c.Depths {
		g := int64(c.StageGrid(i))
		t, d := g*g, int64(c.StageDim(i))
		per := 16*t*d + 4*t*d*int64(c.MLPRatio)
		if !c.LinearStage(i) {
			w := int64(c.Window(i))
			per += 2 * int64(c.Heads[i]) * t * w * w
		}
		n += int64(c.Depths[i])*per + 4*t*d
	}
	img := int64(c.InChans) * int64(c.ImgSize) * int64(c.ImgSize)
	return n + 4*img + 4*int64(c.Classes)
}

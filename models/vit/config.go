package vit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
)

// Config describes one DeiT-family model (docs/method.md 4.1). The zero value is
// not valid; start from Lookup and change fields.
type Config struct {
	// Name is the registry name the config came from (informational).
	Name string
	// ImgSize is the square input side, Patch the patch side (conv kernel
	// and stride), InChans the image channels and Classes the head width.
	ImgSize, Patch, InChans, Classes int
	// Dim is the embedding width, Depth the number of blocks, Heads the
	// attention heads and MLPRatio the MLP hidden width over Dim.
	Dim, Depth, Heads, MLPRatio int
	// Norm selects every norm of the model (block norm1/norm2 and the final
	// norm): "layernorm", "repbn" (BN + alpha·x), "prepbn" (LinearNorm
	// LN->RepBN, the progressive schedule), "batchnorm" (plain BN, no alpha)
	// or "none" (deploy model whose norms were folded into Linears).
	Norm string
	// Attn is "softmax" (ViT attention, scale d^-0.5) or "sla" (simplified
	// linear attention, docs/method.md 3.1).
	Attn string
	// ClsToken prepends a class token (pos_embed then has N+1 rows) and
	// classifies it; otherwise the head reads the mean over tokens. SLAB
	// models keep an unused cls_token parameter either way so that official
	// checkpoints map 1:1.
	ClsToken bool
	// LNEps is the LayerNorm epsilon (1e-6 for DeiT). BatchNorm always uses
	// PyTorch's 1e-5.
	LNEps float32
	// Step is LinearNorm's T (total schedule steps); Warm its warm-up calls.
	Step, Warm int64
	// DWCKernel is the SLA depth-wise conv kernel side (5).
	DWCKernel int
	// DropPath is the drop-path rate of the last block; block i uses
	// DropPath·i/(Depth-1), as timm's linspace.
	DropPath float32
}

// Norm kinds accepted by Config.Norm (nn's NormSpec kinds).
const (
	NormLayerNorm = nn.NormLayerNorm
	NormRepBN     = nn.NormRepBN
	NormPRepBN    = nn.NormPRepBN
	NormBatchNorm = nn.NormBatchNorm
	NormNone      = nn.NormNone
)

// Attention kinds accepted by Config.Attn.
const (
	AttnSoftmax = "softmax"
	AttnSLA     = "sla"
)

// BNEps and BNMomentum are PyTorch's BatchNorm1d defaults, which every
// official vision RepBN uses (docs/method.md 1.1).
const (
	BNEps      = 1e-5
	BNMomentum = 0.1
)

func deit224(name string, dim, heads int) Config {
	return Config{Name: name, ImgSize: 224, Patch: 16, InChans: 3, Classes: 1000,
		Dim: dim, Depth: 12, Heads: heads, MLPRatio: 4, LNEps: 1e-6, DWCKernel: 5}
}

func mini28(name, norm, attn string) Config {
	return Config{Name: name, ImgSize: 28, Patch: 4, InChans: 1, Classes: 10,
		Dim: 64, Depth: 4, Heads: 2, MLPRatio: 4, Norm: norm, Attn: attn,
		LNEps: 1e-6, Step: 1000, DWCKernel: 5}
}

// registry holds the named configurations, registered with package
// models in init. The 224 ones follow the official
// model files (docs/method.md 4.1, 1.3); deit_tiny/deit_small are the plain DeiT
// baselines (LayerNorm, softmax, class token, drop path 0.1 as in DeiT's
// recipe). The 28x28 ones are small MNIST-sized twins for experiments on
// this machine: all use mean pooling so that only norm/attention differ, and
// Step 1000 is a placeholder the trainer overrides.
var registry = func() map[string]Config {
	r := map[string]Config{}
	add := func(c Config) { r[c.Name] = c }

	c := deit224("slab_deit_tiny", 192, 3)
	c.Norm, c.Attn, c.Step = NormPRepBN, AttnSLA, 60000
	add(c)
	c = deit224("slab_deit_small", 384, 6)
	c.Norm, c.Attn, c.Step = NormPRepBN, AttnSLA, 60000
	add(c)
	c = deit224("deit_tiny_prepbn", 192, 3)
	c.Norm, c.Attn, c.ClsToken = NormRepBN, AttnSoftmax, true
	add(c)
	c = deit224("deit_small_prepbn", 384, 6)
	c.Norm, c.Attn, c.ClsToken, c.Step = NormPRepBN, AttnSoftmax, true, 300000
	add(c)
	c = deit224("deit_tiny", 192, 3)
	c.Norm, c.Attn, c.ClsToken, c.DropPath = NormLayerNorm, AttnSoftmax, true, 0.1
	add(c)
	c = deit224("deit_small", 384, 6)
	c.Norm, c.Attn, c.ClsToken, c.DropPath = NormLayerNorm, AttnSoftmax, true, 0.1
	add(c)

	add(mini28("slab_deit_mini_28", NormPRepBN, AttnSLA))
	add(mini28("deit_mini_28", NormLayerNorm, AttnSoftmax))
	add(mini28("deit_mini_prepbn_28", NormPRepBN, AttnSoftmax))
	return r
}()

// Lookup returns the registered configuration called name.
func Lookup(name string) (Config, error) {
	c, ok := registry[name]
	if !ok {
		return Config{}, fmt.Errorf("vit: unknown model %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return c, nil
}

// Names lists the registered model names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate reports the first inconsistency of c with a message naming the
// field at fault.
func (c Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "config"
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("vit: %s: "+format, append([]any{name}, a...)...)
	}
	if err := models.CheckBounds(models.Dim("ImgSize", c.ImgSize, models.MaxImgSize), models.Dim("Patch", c.Patch, models.MaxPatch),
		models.Dim("InChans", c.InChans, models.MaxChannels), models.Dim("Classes", c.Classes, models.MaxClasses),
		models.Dim("Dim", c.Dim, models.MaxWidth), models.Dim("Depth", c.Depth, models.MaxDepth), models.Dim("Heads", c.Heads, models.MaxHeads),
		models.Dim("MLPRatio", c.MLPRatio, models.MaxMLPRatio), models.Dim("DWCKernel", c.DWCKernel, models.MaxPatch)); err != nil {
		return fail("%v", err)
	}
	switch {
	case c.ImgSize <= 0 || c.Patch <= 0 || c.InChans <= 0 || c.Classes <= 0:
		return fail("ImgSize %d, Patch %d, InChans %d, Classes %d must all be positive", c.ImgSize, c.Patch, c.InChans, c.Classes)
	case c.ImgSize%c.Patch != 0:
		return fail("ImgSize %d is not a multiple of Patch %d", c.ImgSize, c.Patch)
	case c.Dim <= 0 || c.Depth <= 0 || c.Heads <= 0 || c.MLPRatio <= 0:
		return fail("Dim %d, Depth %d, Heads %d, MLPRatio %d must all be positive", c.Dim, c.Depth, c.Heads, c.MLPRatio)
	case c.Dim%c.Heads != 0:
		return fail("Dim %d is not divisible by Heads %d", c.Dim, c.Heads)
	case c.DropPath < 0 || c.DropPath >= 1:
		return fail("DropPath %g outside [0, 1)", c.DropPath)
	}
	switch c.Norm {
	case NormLayerNorm, NormPRepBN:
		if !(c.LNEps > 0) {
			return fail("LNEps %g must be positive for norm %q", c.LNEps, c.Norm)
		}
		if c.Norm == NormPRepBN && (c.Step <= 0 || c.Warm < 0) {
			return fail("norm %q needs Step > 0 and Warm >= 0 (got Step %d, Warm %d)", c.Norm, c.Step, c.Warm)
		}
	case NormRepBN, NormBatchNorm, NormNone:
	default:
		return fail("unknown Norm %q (want layernorm, repbn, prepbn, batchnorm or none)", c.Norm)
	}
	switch c.Attn {
	case AttnSoftmax:
	case AttnSLA:
		if c.DWCKernel <= 0 || c.DWCKernel%2 == 0 {
			return fail("DWCKernel %d must be odd and positive for SLA", c.DWCKernel)
		}
		if c.ClsToken {
			// SLA's positional encoding and depth-wise conv live on the
			// patch grid; SLAB-DeiT keeps cls_token only as a parameter.
			return fail("Attn %q works on the patch grid and cannot take a class token (set ClsToken false)", c.Attn)
		}
	default:
		return fail("unknown Attn %q (want softmax or sla)", c.Attn)
	}
	return nil
}

// Grid is the number of patches along one side of the image.
func (c Config) Grid() int { return c.ImgSize / c.Patch }

// Patches is the number of patch tokens, Grid².
func (c Config) Patches() int { return c.Grid() * c.Grid() }

// Tokens is the sequence length the blocks see: the patches plus the class
// token when ClsToken is set (pos_embed has this many rows).
func (c Config) Tokens() int {
	if c.ClsToken {
		return c.Patches() + 1
	}
	return c.Patches()
}

// Hidden is the MLP hidden width.
func (c Config) Hidden() int { return c.Dim * c.MLPRatio }

// HeadDim is the per-head width.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// ModelName is the registry name the config came from.
func (c *Config) ModelName() string { return c.Name }

// Set changes one option: "norm" (layernorm, repbn, prepbn, batchnorm,
// none), "attn" (softmax, sla) or "size" (the input side in pixels).
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		return backbone.SetNorm(value, &c.Norm, &c.Step, &c.LNEps, 1e-6)
	case "attn":
		switch value {
		case AttnSoftmax, AttnSLA:
		default:
			return fmt.Errorf("attn %q is not softmax or sla", value)
		}
		c.Attn = value
		if c.DWCKernel == 0 {
			c.DWCKernel = 5
		}
	case "size":
		n, err := strconv.Atoi(value)
		if err != nil || n <= 0 || n > maxImgSize {
			return fmt.Errorf("size %q must be a whole number of pixels in [1, %d]", value, maxImgSize)
		}
		c.ImgSize = n
	case "drop-path":
		r, err := backbone.ParseDropPath(value)
		if err != nil {
			return err
		}
		c.DropPath = r
	default:
		return fmt.Errorf("the vit family has no option %q (it has norm, attn, size, drop-path)", option)
	}
	return nil
}

// Get returns the value of an option Set knows.
func (c *Config) Get(option string) string {
	switch option {
	case "norm":
		return c.Norm
	case "attn":
		return c.Attn
	case "size":
		return strconv.Itoa(c.ImgSize)
	case "drop-path":
		return backbone.FormatDropPath(c.DropPath)
	}
	return ""
}

// Summary describes the shape in one line.
func (c *Config) Summary() string {
	return fmt.Sprintf("norm %s, attention %s, %dx%d input, patch %d, %d tokens, dim %d, depth %d, heads %d",
		c.Norm, c.Attn, c.ImgSize, c.ImgSize, c.Patch, c.Tokens(), c.Dim, c.Depth, c.Heads)
}

// maxImgSize bounds the input side: 4096x4096 images at patch 16 are
// 65,536 tokens, far past what softmax attention can hold in memory.
const maxImgSize = 4096

// NormSpec is the spec of every norm of the model: block norms and the
// final norm share it (docs/method.md 1.5).
func (c *Config) NormSpec() nn.NormSpec {
	return nn.NormSpec{Kind: c.Norm, Eps: c.LNEps, BNEps: BNEps, BNMomentum: BNMomentum,
		Warm: c.Warm, Step: c.Step, NoCopy: true}
}

// ParamCount counts the parameters New builds, the LayerNorm branch of
// PRepBN and the (possibly unused) cls_token included.
func (c *Config) ParamCount() int64 {
	C, N := int64(c.Dim), int64(c.Tokens())
	H := int64(c.Hidden())
	var norm int64
	switch c.Norm {
	case NormLayerNorm, NormBatchNorm:
		norm = 2 * C
	case NormRepBN:
		norm = 2*C + 1
	case NormPRepBN:
		norm = 4*C + 1
	}
	n := C + N*C + int64(c.InChans*c.Patch*c.Patch)*C + C // cls, pos, patch conv
	blk := 2*norm + 3*C*C + 3*C + C*C + C + C*H + H + H*C + C
	if c.Attn == AttnSLA {
		d, k := int64(c.HeadDim()), int64(c.DWCKernel)
		blk += int64(c.Patches())*C + d*k*k + d
	}
	n += int64(c.Depth)*blk + norm + C*int64(c.Classes) + int64(c.Classes)
	return n
}

// FLOPs is FLOPsByLayer's total for one image.
func (c *Config) FLOPs() int64 {
	var t int64
	for _, v := range c.FLOPsByLayer() {
		t += v
	}
	return t
}

func init() {
	named := map[string]models.Config{}
	for n, c := range registry {
		c := c
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskClassify,
		Doc:       "DeiT-style ViTs: DeiT, DeiT-PRepBN, SLAB-DeiT (one stage, patch embedding, cls token or mean pooling)",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			vc, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("vit: config of type %T", c)
			}
			return build(*vc, seed, draw)
		},
	}, named)
}

// Family is the name this package registers.
const Family = "vit"

// Activations counts the float32 values a forward keeps per image
// (models.ActivationCounter), rounded up: per block about 16 tensors of
// tokens x width, 4 of tokens x hidden and, for softmax attention, two
// token-by-token maps per head; the patch embedding's im2col and the
// input.
func (c Config) Activations() int64 {
	t, d, h := int64(c.Tokens()), int64(c.Dim), int64(c.Hidden())
	per := 16*t*d + 4*t*h
	if c.Attn != AttnSLA {
		per += 2 * int64(c.Heads) * t * t
	}
	im2col := int64(c.Patches()) * int64(c.InChans) * int64(c.Patch) * int64(c.Patch)
	return int64(c.Depth)*per + 2*im2col + 2*int64(c.InChans)*int64(c.ImgSize)*int64(c.ImgSize) + 4*int64(c.Classes)
}

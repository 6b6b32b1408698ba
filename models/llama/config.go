// Package llama is slab's decoder-only language model: a LLaMA-style
// pre-norm transformer (token embedding, RoPE, causal grouped-query softmax
// attention, SwiGLU MLP, untied or tied lm_head) whose norms are RMSNorm,
// LayerNorm or PRepBN (docs/method.md 6.1: LinearNorm(RMSNorm, RepBN) with the
// LLaMA every-16-calls schedule).
//
// Design choices:
//   - Parameter names are the official HF/SLAB state-dict names
//     (model.embed_tokens, model.layers.i.self_attn.q_proj, ..., lm_head),
//     so a checkpoint is a name lookup.
//   - Two forward paths: Forward (training and perplexity, full sequences,
//     keeps activations for Backward) and the KV-cached Step path for
//     generation, which keeps nothing and allocates nothing per token.
//   - BatchNorm statistics run over all B·T tokens. We train on packed,
//     unpadded windows, so there is no pad mask; the official code masks
//     pad tokens out of the final norm's BN only (docs/method.md 6.1), which is the
//     one place a padded batch would differ.
//   - RepBN init is a choice: "official" (alpha = gamma = beta = 0, which
//     makes the first RepBN output zero and, in short runs, leaves the
//     model far behind once lambda reaches 0) or "vision" (alpha = gamma =
//     1), the default for short runs.
package llama

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// Config describes one decoder.
type Config struct {
	Name     string
	Vocab    int
	Dim      int
	Layers   int
	Heads    int
	KVHeads  int
	HeadDim  int
	Hidden   int // SwiGLU intermediate size
	MaxSeq   int // RoPE table and KV cache limit
	RopeBase float64
	Eps      float32 // RMSNorm / LayerNorm / BN eps
	Tied     bool    // lm_head shares model.embed_tokens.weight
	Norm     string  // "rmsnorm", "layernorm" or "prepbn"
	// Attn is "softmax" (default, RoPE) or "sla": causal simplified linear
	// attention (nn.CausalAttention.Linear), O(1) state per token.
	Attn      string
	RepBNInit string // "vision" or "official" (prepbn only)
	// Warm and Step are the LinearNorm counters (in units of 16 training
	// calls, the LLaMA variant's num_step period).
	Warm, Step int64
	InitStd    float64 // normal init std of every Linear and the embedding
	// Tokenizer is the default tokenizer of the model ("byte", "gpt2" or
	// "gpt2-trim"); the CLI's --tokenizer overrides it.
	Tokenizer string `json:",omitempty"`
}

// Norm kinds.
const (
	NormRMS  = "rmsnorm"
	NormLN   = "layernorm"
	NormPRep = "prepbn"
	// NormNone is a folded prepbn model (fuse.FuseLLaMA): no norms, biases
	// on q/k/v/gate/up/lm_head.
	NormNone  = "none"
	InitVis   = "vision"
	InitOffic = "official"
	// Attention kinds.
	AttnSoftmax = "softmax"
	AttnSLA     = "sla"
)

var registry = map[string]Config{
	// The official SLAB LLaMA-350M (docs/method.md 6.1).
	"llama_350m": {Vocab: 32000, Dim: 1024, Layers: 18, Heads: 8, KVHeads: 8, HeadDim: 128,
		Hidden: 4096, MaxSeq: 2048, RopeBase: 10000, Eps: 1e-6, Warm: 10000, Step: 18000, InitStd: 0.02},
	// docs/peers.md's 60M PyTorch anchor: dim 512, 8 layers, vocab 32000.
	"lm_60m": {Vocab: 32000, Dim: 512, Layers: 8, Heads: 8, KVHeads: 8, HeadDim: 64,
		Hidden: 1376, MaxSeq: 1024, RopeBase: 10000, Eps: 1e-6, Warm: 10000, Step: 18000, InitStd: 0.02},
	// Byte-level anchor of the SOTU experiments.
	"lm_tiny": {Vocab: 256, Dim: 256, Layers: 4, Heads: 4, KVHeads: 4, HeadDim: 64,
		Hidden: 688, MaxSeq: 128, RopeBase: 10000, Eps: 1e-6, Warm: 8, Step: 16, InitStd: 0.02},
	"lm_small": {Vocab: 256, Dim: 384, Layers: 6, Heads: 6, KVHeads: 6, HeadDim: 64,
		Hidden: 1024, MaxSeq: 256, RopeBase: 10000, Eps: 1e-6, Warm: 16, Step: 32, InitStd: 0.02},
	// The SOTU model of docs/bench-lm.md: lm_small's shape on GPT-2 BPE
	// trimmed to the SOTU training split's 24,254 types (data.GPT2Trim),
	// with the output tied to the embedding.
	"lm_small_bpe": {Vocab: 24254, Dim: 384, Layers: 6, Heads: 6, KVHeads: 6, HeadDim: 64,
		Hidden: 1024, MaxSeq: 256, RopeBase: 10000, Eps: 1e-6, Warm: 16, Step: 32, InitStd: 0.02,
		Tied: true, Tokenizer: "gpt2-trim"},
	// A grouped-query toy for tests.
	"lm_test": {Vocab: 64, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Hidden: 48, MaxSeq: 32, RopeBase: 10000, Eps: 1e-6, Warm: 0, Step: 2, InitStd: 0.1},
	// The toy with its output tied to the embedding (as lm_small_bpe).
	"lm_test_tied": {Vocab: 64, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
		Hidden: 48, MaxSeq: 32, RopeBase: 10000, Eps: 1e-6, Warm: 0, Step: 2, InitStd: 0.1, Tied: true},
}

// Names lists the registered base configs.
func Names() []string {
	var ns []string
	for n := range registry {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Lookup returns a registered config. A name may carry a norm suffix
// ("lm_tiny_prepbn", "llama_350m_rmsnorm"); otherwise the norm is
// rmsnorm. RepBNInit defaults to vision.
func Lookup(name string) (Config, error) {
	attn := AttnSoftmax
	if n, ok := strings.CutSuffix(name, "_"+AttnSLA); ok {
		name, attn = n, AttnSLA
	}
	base, norm := name, NormRMS
	for _, n := range []string{NormRMS, NormLN, NormPRep} {
		if strings.HasSuffix(name, "_"+n) {
			base, norm = strings.TrimSuffix(name, "_"+n), n
		}
	}
	c, ok := registry[base]
	if !ok {
		return Config{}, fmt.Errorf("unknown model %q (known: %s, optionally with suffix _rmsnorm, _layernorm or _prepbn, then _sla)", name, strings.Join(Names(), ", "))
	}
	c.Name, c.Norm, c.RepBNInit, c.Attn = name, norm, InitVis, attn
	if c.Tokenizer == "" {
		c.Tokenizer = "byte"
	}
	if attn == AttnSLA {
		c.Name += "_" + AttnSLA
	}
	return c, c.Validate()
}

// Validate checks the shape constraints a forward pass relies on.
func (c *Config) Validate() error {
	if err := models.CheckBounds(models.Dim("vocab", c.Vocab, models.MaxVocab), models.Dim("dim", c.Dim, models.MaxWidth),
		models.Dim("layers", c.Layers, models.MaxDepth), models.Dim("heads", c.Heads, models.MaxHeads), models.Dim("kv heads", c.KVHeads, models.MaxHeads),
		models.Dim("head dim", c.HeadDim, models.MaxWidth), models.Dim("hidden", c.Hidden, models.MaxHidden),
		models.Dim("max positions", c.MaxSeq, models.MaxContext)); err != nil {
		return fmt.Errorf("model %s: %v", c.Name, err)
	}
	switch {
	case c.Vocab <= 0 || c.Dim <= 0 || c.Layers <= 0 || c.Hidden <= 0 || c.MaxSeq <= 0:
		return fmt.Errorf("model %s: sizes must be positive", c.Name)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("model %s: %d heads not a multiple of %d kv heads", c.Name, c.Heads, c.KVHeads)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("model %s: head dim %d must be even for RoPE", c.Name, c.HeadDim)
	}
	switch c.Norm {
	case NormRMS, NormLN, NormPRep, NormNone:
	default:
		return fmt.Errorf("model %s: norm %q is not rmsnorm, layernorm, prepbn or none", c.Name, c.Norm)
	}
	if c.Vocab > maxVocab || c.Dim > 1<<16 || c.Hidden > 1<<18 || c.Layers > 1024 || c.MaxSeq > 1<<20 {
		return fmt.Errorf("model %s: a size is beyond slab's bounds (vocab %d <= %d, dim %d <= 65536, hidden %d <= 262144, layers %d <= 1024, max positions %d <= 1048576)",
			c.Name, c.Vocab, maxVocab, c.Dim, c.Hidden, c.Layers, c.MaxSeq)
	}
	if c.Attn != "" && c.Attn != AttnSoftmax && c.Attn != AttnSLA {
		return fmt.Errorf("model %s: attention %q is not softmax or sla", c.Name, c.Attn)
	}
	if c.Norm == NormPRep && c.RepBNInit != InitVis && c.RepBNInit != InitOffic {
		return fmt.Errorf("model %s: repbn init %q is not vision or official", c.Name, c.RepBNInit)
	}
	return nil
}

// ParamCount is the number of learnable values, norm parameters included
// (both branches for prepbn) and the biases a fold adds.
func (c *Config) ParamCount() int64 {
	d, h := int64(c.Dim), int64(c.Hidden)
	q, kv := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	per := d*q*2 + d*kv*2 + 3*d*h
	var norm int64
	switch c.Norm {
	case NormRMS:
		norm = d
	case NormLN:
		norm = 2 * d
	case NormPRep:
		norm = 3*d + 1
	case NormNone:
		per += q + 2*kv + 2*h // biases of q/k/v and gate/up
	}
	n := int64(c.Layers)*(per+2*norm) + norm + int64(c.Vocab)*d
	if !c.Tied {
		n += int64(c.Vocab) * d
	}
	if c.Norm == NormNone {
		n += int64(c.Vocab)
	}
	return n
}

// FLOPsByLayer counts the forward cost of one token at the last position
// of a full context (MaxSeq), a multiply-add as 2: "linear" the weight
// matrices and lm_head, "attention" the scores and weighted sums over the
// context (a constant state for causal SLA), "norm" the norms (an affine
// map for eval-mode RepBN), "activation" SwiGLU.
func (c *Config) FLOPsByLayer() map[string]int64 {
	d, h, L := int64(c.Dim), int64(c.Hidden), int64(c.Layers)
	q, kv := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	f := map[string]int64{}
	f["linear"] = L*2*(d*q*2+d*kv*2+3*d*h) + 2*d*int64(c.Vocab)
	ctx := int64(c.MaxSeq)
	if c.Attn == AttnSLA {
		f["attention"] = L * 4 * q * int64(c.HeadDim)
	} else {
		f["attention"] = L * 4 * q * ctx
	}
	switch c.Norm {
	case NormRMS:
		f["norm"] = (2*L + 1) * 4 * d
	case NormLN:
		f["norm"] = (2*L + 1) * 7 * d
	case NormPRep:
		f["norm"] = (2*L + 1) * 2 * d
	}
	f["activation"] = L * 3 * h
	return f
}

// FLOPs is FLOPsByLayer's total.
func (c *Config) FLOPs() int64 {
	var t int64
	for _, v := range c.FLOPsByLayer() {
		t += v
	}
	return t
}

// NormSpec is the spec of every norm: RMSNorm, LayerNorm, or LinearNorm
// (RMSNorm -> RepBN) on the LLaMA schedule (one unit = 16 training calls),
// the BN epsilon equal to the RMS one (docs/method.md 6.1).
func (c *Config) NormSpec() nn.NormSpec {
	s := nn.NormSpec{Kind: c.Norm, Eps: c.Eps, BNEps: c.Eps, Base: nn.NormRMSNorm,
		Warm: c.Warm, Step: c.Step, Every: nn.EveryLLaMA, Init: c.RepBNInit}
	if c.Norm == NormPRep && s.Step <= 0 {
		s.Step = 1 // the trainer sets the schedule before the first step
	}
	return s
}

// ModelName is the name the config was looked up by.
func (c *Config) ModelName() string { return c.Name }

// SetModelName records the name the config was looked up by.
func (c *Config) SetModelName(n string) { c.Name = n }

// Set changes one option: "norm" (rmsnorm, layernorm, prepbn, none),
// "attn" (softmax, sla), "repbn-init" (vision, official), "tokenizer"
// (byte, gpt2, gpt2-trim) or "vocab" (the tokenizer's size).
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		switch value {
		case NormRMS, NormLN, NormPRep, NormNone:
		default:
			return fmt.Errorf("norm %q is not rmsnorm, layernorm, prepbn or none", value)
		}
		c.Norm = value
	case "attn":
		if value != AttnSoftmax && value != AttnSLA {
			return fmt.Errorf("attn %q is not softmax or sla", value)
		}
		c.Attn = value
	case "repbn-init":
		if value != InitVis && value != InitOffic {
			return fmt.Errorf("repbn-init %q is not vision or official", value)
		}
		c.RepBNInit = value
	case "tokenizer":
		c.Tokenizer = value
	case "vocab":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > maxVocab {
			return fmt.Errorf("vocab %q must be a whole number in [1, %d]", value, maxVocab)
		}
		c.Vocab = n
	default:
		return fmt.Errorf("the llama family has no option %q (it has norm, attn, repbn-init, tokenizer, vocab)", option)
	}
	return nil
}

// Get returns the value of an option Set knows.
func (c *Config) Get(option string) string {
	switch option {
	case "norm":
		return c.Norm
	case "attn":
		if c.Attn == "" {
			return AttnSoftmax
		}
		return c.Attn
	case "repbn-init":
		return c.RepBNInit
	case "tokenizer":
		return c.Tokenizer
	case "vocab":
		return strconv.Itoa(c.Vocab)
	}
	return ""
}

// Summary describes the shape in one line.
func (c *Config) Summary() string {
	return fmt.Sprintf("norm %s, attention %s, vocab %d, dim %d, %d layers, %d heads (%d kv), MLP %d, context %d",
		c.Norm, c.Get("attn"), c.Vocab, c.Dim, c.Layers, c.Heads, c.KVHeads, c.Hidden, c.MaxSeq)
}

// maxVocab bounds the vocabulary (LLaMA 3 has 128,256 types).
const maxVocab = 1 << 20

// Family is the name this package registers.
const Family = "llama"

func init() {
	named := map[string]models.Config{}
	for n := range registry {
		c, err := Lookup(n)
		if err != nil {
			panic(err)
		}
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskLM,
		Doc:       "LLaMA-style decoders (RoPE, SwiGLU) with RMSNorm, LayerNorm or PRepBN; names take _rmsnorm/_layernorm/_prepbn and _sla",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			lc, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("llama: config of type %T", c)
			}
			return build(*lc, seed, draw)
		},
		Aliases: []models.Alias{{Official: ".rotary_emb.inv_freq", Check: checkInvFreq}},
	}, named)
	models.RegisterSuffixes(
		models.Suffix{Family: Family, Suffix: "_" + AttnSLA, Option: "attn", Value: AttnSLA},
		models.Suffix{Family: Family, Suffix: "_" + NormRMS, Option: "norm", Value: NormRMS},
		models.Suffix{Family: Family, Suffix: "_" + NormLN, Option: "norm", Value: NormLN},
		models.Suffix{Family: Family, Suffix: "_" + NormPRep, Option: "norm", Value: NormPRep},
	)
}

// Activations counts the float32 values a forward keeps per token at full
// context (models.ActivationCounter), rounded up: per layer about 16
// vectors of the model width, 4 of the SwiGLU width and, for softmax
// attention, two rows of MaxSeq scores per head; the logits and their
// gradient.
func (c *Config) Activations() int64 { return c.ActivationsAt(c.MaxSeq) }

// ActivationsAt is Activations for sequences of seq tokens
// (models.SeqActivationCounter).
func (c *Config) ActivationsAt(seq int) int64 {
	per := 16*int64(c.Dim) + 4*int64(c.Hidden)
	if c.Attn != AttnSLA {
		per += 2 * int64(c.Heads) * int64(min(seq, c.MaxSeq))
	}
	return int64(c.Layers)*per + 4*int64(c.Vocab)
}

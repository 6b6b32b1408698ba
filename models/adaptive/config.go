// Package adaptive is the language model of the paper's third experiment
// (docs/method.md 6.2): the adaptive-input Transformer of Baevski & Auli
// ("Adaptive Input Representations for Neural Language Modeling", ICLR
// 2019; fairseq's transformer_lm_wiki103) with LayerNorm or PRepBN, on
// word-level text (data.WordTokenizer).
//
// The model, as fairseq's transformer_lm with adaptive input and output:
//
//	x = sqrt(D) * AdaptiveInput(ids) + sinusoidal(positions)
//	x += Dropout(Attn(N1(x)))        causal softmax attention, no RoPE
//	x += Dropout(FC2(ReLU(FC1(N2(x)))))
//	log p(next) = AdaptiveSoftmax(x)   tied to the input bands
//
// Design choices:
//   - No final norm (fairseq's no_decoder_final_norm, which the wiki103
//     configuration sets). With a tied adaptive softmax a final PRepBN
//     could only fold by untying the output from the input embeddings;
//     without one every norm folds into the q/k/v projections or fc1 and
//     the folded model keeps its tying.
//   - The adaptive softmax never forms full logits in training: the model
//     is a models.LossLM (ForwardLoss/BackwardLoss); Forward gives exact
//     log-probabilities of the whole vocabulary in evaluation only.
//   - Output "full" is the same Transformer with a plain embedding and a
//     full softmax tied to it (the comparison row).
//   - Dropout draws from a generator reseeded on every training forward
//     from a call counter kept as a buffer (decoder.dropout_calls), so a
//     resumed run draws the same masks as an uninterrupted one.
//   - Positions start at 0 (fairseq starts at padding_idx+1; slab's
//     vocabularies have no padding token).
package adaptive

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// Family is the name this package registers.
const Family = "adaptive"

// Output layers.
const (
	// OutputAdaptive is adaptive input + adaptive softmax, tied.
	OutputAdaptive = "adaptive"
	// OutputFull is a plain embedding + full softmax, tied.
	OutputFull = "full"
)

// Norm kinds.
const (
	NormLN   = nn.NormLayerNorm
	NormPRep = nn.NormPRepBN
	// NormNone is a folded prepbn model: no norms, biases on q/k/v.
	NormNone = nn.NormNone
)

// Config describes one adaptive-input language model.
type Config struct {
	Name  string
	Vocab int
	// Cutoffs are the band ends below Vocab (frequency-sorted ids); empty
	// means [Vocab/10, Vocab/3] (the tiny models' rule, for any tokenizer).
	Cutoffs []int `json:",omitempty"`
	// Factor divides each band's width (4 in the paper).
	Factor  float64
	Dim     int
	Layers  int
	Heads   int
	Hidden  int // FFN width (4 Dim in fairseq)
	MaxSeq  int
	Eps     float32
	Norm    string // layernorm, prepbn or none (folded)
	Output  string // adaptive or full
	Dropout float32
	// TailDropout is the dropout inside the adaptive softmax's clusters.
	TailDropout float32
	// Warm and Step are the PRepBN schedule in training calls (the vision
	// schedule, docs/method.md 1.2); the trainer sets them from its recipe.
	Warm, Step int64
	// Tokenizer is the model's default tokenizer ("word").
	Tokenizer string `json:",omitempty"`
}

var registry = map[string]Config{
	// For tests: a couple of hundred words, 2 layers of width 32.
	"adaptive_lm_tiny": {Vocab: 200, Factor: 4, Dim: 32, Layers: 2, Heads: 4, Hidden: 128, MaxSeq: 32,
		Eps: 1e-5, Norm: NormLN, Output: OutputAdaptive, TailDropout: 0.2, Tokenizer: "word"},
	// The SOTU model: word vocabulary (min count 3) with bands [0, 2000),
	// [2000, 8000), [8000, V) of widths 256, 64, 16; 4 layers of width 256,
	// 4 heads, FFN 1024, 128 positions.
	"adaptive_lm_small": {Vocab: 16384, Cutoffs: []int{2000, 8000}, Factor: 4, Dim: 256, Layers: 4, Heads: 4,
		Hidden: 1024, MaxSeq: 128, Eps: 1e-5, Norm: NormLN, Output: OutputAdaptive, Dropout: 0.1, TailDropout: 0.2,
		Tokenizer: "word"},
}

// cutoffs returns the band ends below Vocab the model uses.
func (c *Config) cutoffs() []int {
	if len(c.Cutoffs) > 0 {
		return c.Cutoffs
	}
	a, b := max(1, c.Vocab/10), max(2, c.Vocab/3)
	if b >= c.Vocab || a >= b {
		return nil // too small a vocabulary for bands: one band
	}
	return []int{a, b}
}

// Validate checks the shape constraints a forward pass relies on.
func (c *Config) Validate() error {
	if err := models.CheckBounds(models.Dim("vocab", c.Vocab, models.MaxVocab), models.Dim("dim", c.Dim, models.MaxWidth),
		models.Dim("layers", c.Layers, models.MaxDepth), models.Dim("heads", c.Heads, models.MaxHeads), models.Dim("hidden", c.Hidden, models.MaxHidden),
		models.Dim("max positions", c.MaxSeq, models.MaxContext)); err != nil {
		return fmt.Errorf("model %s: %v", c.Name, err)
	}
	switch {
	case c.Vocab <= 0 || c.Dim <= 0 || c.Layers <= 0 || c.Hidden <= 0 || c.MaxSeq <= 0 || c.Heads <= 0:
		return fmt.Errorf("model %s: sizes must be positive (vocab %d, dim %d, layers %d, heads %d, hidden %d, max positions %d)",
			c.Name, c.Vocab, c.Dim, c.Layers, c.Heads, c.Hidden, c.MaxSeq)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("model %s: dim %d is not a multiple of %d heads", c.Name, c.Dim, c.Heads)
	case c.Dim%2 != 0:
		return fmt.Errorf("model %s: dim %d must be even for sinusoidal positions", c.Name, c.Dim)
	case c.Vocab > 1<<22 || c.Dim > 1<<16 || c.Hidden > 1<<18 || c.Layers > 1024 || c.MaxSeq > 1<<20:
		return fmt.Errorf("model %s: a size is beyond slab's bounds", c.Name)
	case !(c.Dropout >= 0 && c.Dropout < 1) || !(c.TailDropout >= 0 && c.TailDropout < 1):
		return fmt.Errorf("model %s: dropout %g and tail dropout %g must be in [0, 1)", c.Name, c.Dropout, c.TailDropout)
	case !(c.Eps > 0):
		return fmt.Errorf("model %s: eps %g must be positive", c.Name, c.Eps)
	}
	switch c.Norm {
	case NormLN, NormPRep, NormNone:
	default:
		return fmt.Errorf("model %s: norm %q is not layernorm, prepbn or none", c.Name, c.Norm)
	}
	switch c.Output {
	case OutputAdaptive:
		if !(c.Factor >= 1) {
			return fmt.Errorf("model %s: factor %g must be >= 1", c.Name, c.Factor)
		}
		cut, err := nn.AdaptiveCutoffs(c.Vocab, c.cutoffs())
		if err != nil {
			return fmt.Errorf("model %s: %w", c.Name, err)
		}
		if d := nn.AdaptiveDim(c.Dim, c.Factor, len(cut)-1); d < 1 {
			return fmt.Errorf("model %s: the last band's width %d/%g^%d is below 1", c.Name, c.Dim, c.Factor, len(cut)-1)
		}
	case OutputFull:
	default:
		return fmt.Errorf("model %s: output %q is not adaptive or full", c.Name, c.Output)
	}
	return nil
}

// bands returns the (size, width) of each adaptive band.
func (c *Config) bands() (size, width []int) {
	cut, _ := nn.AdaptiveCutoffs(c.Vocab, c.cutoffs())
	lo := 0
	for i, hi := range cut {
		size = append(size, hi-lo)
		width = append(width, nn.AdaptiveDim(c.Dim, c.Factor, i))
		lo = hi
	}
	return size, width
}

// ParamCount is the number of learnable values (tied tensors once).
func (c *Config) ParamCount() int64 {
	d, h := int64(c.Dim), int64(c.Hidden)
	per := 4*d*d + d*h + h + h*d + d
	var norm int64
	switch c.Norm {
	case NormLN:
		norm = 2 * d
	case NormPRep:
		norm = 4*d + 1 // LayerNorm weight, bias; RepBN alpha, BN weight, bias
	case NormNone:
		per += 3 * d // the q/k/v biases a fold adds
	}
	n := int64(c.Layers) * (per + 2*norm)
	if c.Output == OutputFull {
		return n + int64(c.Vocab)*d
	}
	size, width := c.bands()
	for i := range size {
		n += int64(size[i]+c.Dim) * int64(width[i])
	}
	if width[0] != c.Dim {
		n += int64(width[0]) * d // the head's word projection
	}
	return n + int64(len(size)-1)*d // the head's cluster scores
}

// FLOPsByLayer counts the forward cost of one token at the last position
// of a full context, a multiply-add as 2: "linear" the block matrices,
// "attention" scores and weighted sums over MaxSeq positions, "input" the
// band projection of a band-0 word, "output" the whole distribution (as
// generation computes it), "norm" and "activation".
func (c *Config) FLOPsByLayer() map[string]int64 {
	d, h, L := int64(c.Dim), int64(c.Hidden), int64(c.Layers)
	f := map[string]int64{
		"linear":     L * 2 * (4*d*d + 2*d*h),
		"attention":  L * 4 * d * int64(c.MaxSeq),
		"activation": L * h,
	}
	switch c.Norm {
	case NormLN:
		f["norm"] = 2 * L * 7 * d
	case NormPRep:
		f["norm"] = 2 * L * 2 * d
	}
	if c.Output == OutputFull {
		f["output"] = 2 * d * int64(c.Vocab)
		return f
	}
	size, width := c.bands()
	f["input"] = 2 * d * int64(width[0])
	out := 2 * d * int64(size[0]+len(size)-1)
	for i := 1; i < len(size); i++ {
		out += 2 * (d*int64(width[i]) + int64(size[i]*width[i]))
	}
	f["output"] = out
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

// NormSpec is LayerNorm, or PRepBN (LayerNorm -> RepBN) with the vision
// schedule and the vision RepBN initialisation (alpha = gamma = 1): the
// LLaMA zero initialisation fails in short runs (docs/bench-lm.md).
func (c *Config) NormSpec() nn.NormSpec {
	s := nn.NormSpec{Kind: c.Norm, Eps: c.Eps, Base: nn.NormLayerNorm, Warm: c.Warm, Step: c.Step,
		Every: nn.EveryVision, Init: nn.InitVision}
	if c.Norm == NormPRep && s.Step <= 0 {
		s.Step = 1 // the trainer sets the schedule before the first step
	}
	return s
}

// ModelName is the name the config was looked up by.
func (c *Config) ModelName() string { return c.Name }

// SetModelName records the name the config was looked up by.
func (c *Config) SetModelName(n string) { c.Name = n }

// Set changes one option: "norm" (layernorm, prepbn, none), "output"
// (adaptive, full), "cutoffs" (comma-separated band ends, or "auto" for
// vocab/10, vocab/3), "dropout", "tail-dropout", "tokenizer" or "vocab".
func (c *Config) Set(option, value string) error {
	switch option {
	case "norm":
		switch value {
		case NormLN, NormPRep, NormNone:
		default:
			return fmt.Errorf("norm %q is not layernorm, prepbn or none", value)
		}
		c.Norm = value
	case "output":
		if value != OutputAdaptive && value != OutputFull {
			return fmt.Errorf("output %q is not adaptive or full", value)
		}
		c.Output = value
	case "cutoffs":
		if value == "auto" {
			c.Cutoffs = nil
			return nil
		}
		var cs []int
		for _, f := range strings.Split(value, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("cutoffs %q: want positive whole numbers separated by commas, or auto", value)
			}
			cs = append(cs, n)
		}
		c.Cutoffs = cs
	case "dropout", "tail-dropout":
		v, err := strconv.ParseFloat(value, 32)
		if err != nil || !(v >= 0 && v < 1) {
			return fmt.Errorf("%s %q must be a number in [0, 1)", option, value)
		}
		if option == "dropout" {
			c.Dropout = float32(v)
		} else {
			c.TailDropout = float32(v)
		}
	case "tokenizer":
		c.Tokenizer = value
	case "vocab":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 1<<22 {
			return fmt.Errorf("vocab %q must be a whole number in [1, %d]", value, 1<<22)
		}
		c.Vocab = n
	default:
		return fmt.Errorf("the adaptive family has no option %q (it has norm, output, cutoffs, dropout, tail-dropout, tokenizer, vocab)", option)
	}
	return nil
}

// Get returns the value of an option Set knows.
func (c *Config) Get(option string) string {
	switch option {
	case "norm":
		return c.Norm
	case "output":
		return c.Output
	case "cutoffs":
		if len(c.Cutoffs) == 0 {
			return "auto"
		}
		s := make([]string, len(c.Cutoffs))
		for i, v := range c.Cutoffs {
			s[i] = strconv.Itoa(v)
		}
		return strings.Join(s, ",")
	case "dropout":
		return strconv.FormatFloat(float64(c.Dropout), 'g', -1, 32)
	case "tail-dropout":
		return strconv.FormatFloat(float64(c.TailDropout), 'g', -1, 32)
	case "tokenizer":
		return c.Tokenizer
	case "vocab":
		return strconv.Itoa(c.Vocab)
	}
	return ""
}

// Summary describes the shape in one line.
func (c *Config) Summary() string {
	out := "full softmax"
	if c.Output == OutputAdaptive {
		size, width := c.bands()
		out = fmt.Sprintf("adaptive bands %v widths %v", size, width)
	}
	return fmt.Sprintf("norm %s, vocab %d, %s, dim %d, %d layers, %d heads, FFN %d, context %d",
		c.Norm, c.Vocab, out, c.Dim, c.Layers, c.Heads, c.Hidden, c.MaxSeq)
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

func init() {
	named := map[string]models.Config{}
	for n, c := range registry {
		c.Name = n
		named[n] = &c
	}
	models.Register(&models.Family{
		Name: Family, Task: models.TaskLM,
		Doc:       "adaptive-input Transformer LMs (Baevski & Auli 2019) with LayerNorm or PRepBN; names take _full, then _layernorm/_prepbn",
		NewConfig: func() models.Config { return &Config{} },
		Build: func(c models.Config, seed uint64, draw bool) (models.Model, error) {
			ac, ok := c.(*Config)
			if !ok {
				return nil, fmt.Errorf("adaptive: config of type %T", c)
			}
			return build(*ac, seed, draw)
		},
	}, named)
	models.RegisterSuffixes(
		models.Suffix{Family: Family, Suffix: "_" + NormLN, Option: "norm", Value: NormLN},
		models.Suffix{Family: Family, Suffix: "_" + NormPRep, Option: "norm", Value: NormPRep},
		models.Suffix{Family: Family, Suffix: "_" + OutputFull, Option: "output", Value: OutputFull},
	)
}

// Activations counts the float32 values a forward keeps per token at full
// context (models.ActivationCounter), rounded up: per layer about 16
// vectors of the model width, 4 of the FFN width and two rows of MaxSeq
// attention scores per head; the output logits (all of the vocabulary,
// the adaptive softmax's worst case) and their gradient.
func (c *Config) Activations() int64 { return c.ActivationsAt(c.MaxSeq) }

// ActivationsAt is Activations for sequences of seq tokens
// (models.SeqActivationCounter).
func (c *Config) ActivationsAt(seq int) int64 {
	per := 16*int64(c.Dim) + 4*int64(c.Hidden) + 2*int64(c.Heads)*int64(min(seq, c.MaxSeq))
	return int64(c.Layers)*per + 4*int64(c.Vocab)
}

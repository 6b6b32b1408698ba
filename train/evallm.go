package train

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// LMEvalOptions says what EvalLM evaluates. Errors about one of them are
// *models.InputError values whose Input is the option's name as slab
// eval-lm spells it (ckpt, data, split, batch, seq, n, fold, fold-check,
// dtype, and Want's options), so that a program can point at its own flag.
type LMEvalOptions struct {
	Checkpoint string // language-model checkpoint (LoadLM)
	Data       string // corpus: sotu or a UTF-8 text file
	Split      string // validation or test
	Batch, Seq int    // Seq 0 = the model's context
	Fold       bool   // fold PRepBN into the linears first
	// FoldCheck evaluates the unfolded model and compares a folded copy
	// with it on the split's logits and on Greedy tokens from Prompt.
	FoldCheck bool
	Prompt    string
	Greedy    int
	Dtype     string // Linear weights: f32, bf16 or int8 (nn.Quantize)
	// Bigram also scores the split with an add-one bigram model counted on
	// the training split of the same tokens: the floor a trained model
	// must be far below.
	Bigram bool
	// Warn receives the checkpoint's load warnings (nil: dropped).
	Warn func([]string)
	// Want lists options (model, norm, attn, tokenizer, ...) the caller
	// expects of the checkpoint; one it holds otherwise is an error
	// (CheckConfig), never silently dropped.
	Want map[string]string
}

// LMEvalResult is the JSON of slab eval-lm.
type LMEvalResult struct {
	Checkpoint string  `json:"checkpoint"`
	Split      string  `json:"split"`
	Folded     bool    `json:"folded"`
	Dtype      string  `json:"dtype"` // weights of the Linears (--dtype)
	Loss       Metric  `json:"loss"`
	PPL        Metric  `json:"ppl"`
	Tokens     int     `json:"tokens"`
	Seconds    float64 `json:"seconds"`
	Vocab      int     `json:"vocab"`
	// OOVRate is the fraction of the split's words the tokenizer maps to
	// <unk> (word-level tokenizers only; byte and BPE tokenizers have no
	// out-of-vocabulary words).
	OOVRate *float64 `json:"oov_rate,omitempty"`
	// BigramPPL is LMEvalOptions.Bigram's perplexity (scored over every
	// token of the split after the first, BigramTokens of them).
	BigramPPL    *float64 `json:"bigram_ppl,omitempty"`
	BigramTokens int      `json:"bigram_tokens,omitempty"`
	// FoldCheck is set by LMEvalOptions.FoldCheck.
	FoldCheck *LMFoldCheck `json:"fold_check,omitempty"`
}

// LMFoldCheck compares a folded prepbn model with its unfolded original on
// the evaluated split and on a greedy generation.
type LMFoldCheck struct {
	// RelErr is ||folded - unfolded|| / ||unfolded|| over all logits of
	// the split; MaxAbs the largest single difference.
	RelErr       Metric `json:"logits_rel_err"`
	MaxAbs       Metric `json:"logits_max_abs_diff"`
	FoldedLoss   Metric `json:"folded_loss"`
	Prompt       string `json:"prompt"`
	GreedyTokens int    `json:"greedy_tokens"`
	// GreedySame is how many leading greedy tokens agree (all of them when
	// the fold is exact enough).
	GreedySame int    `json:"greedy_same"`
	GreedyText string `json:"greedy_text"`
}

func inputErr(input, format string, a ...any) error {
	return &models.InputError{Input: input, Err: fmt.Errorf(format, a...)}
}

// LoadLM builds the language model of a checkpoint, loads its weights and
// restores its tokenizer; warns lists what the load skipped or defaulted.
func LoadLM(path string) (m models.Decoder, tok data.Tokenizer, f *checkpoint.File, warns []string, err error) {
	mm, f, warns, err := models.Load(path)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	m, ok := mm.(models.Decoder)
	if !ok {
		return nil, nil, nil, warns, fmt.Errorf("%s holds %s, a %s model, not a language model", path, models.ConfigName(mm.Config()), mm.Family())
	}
	if tok, err = data.TokenizerFromMeta(f.Metadata); err != nil {
		return nil, nil, nil, warns, fmt.Errorf("%s: %w", path, err)
	}
	return m, tok, f, warns, nil
}

// Quantize stores m's Linear weights in the dtype named s ("" leaves them
// as they are, which for a quantized checkpoint is its own dtype) and
// returns the dtype they are in; errors are *models.InputError for input
// "dtype". A dtype other than a quantized checkpoint's own, f32 included,
// is refused naming the file: its float32 weights are gone.
func Quantize(m nn.Module, s string) (kernels.Dtype, error) {
	if strings.TrimSpace(s) == "" {
		have, _ := nn.StoredDtype(m)
		return have, nil
	}
	d, err := kernels.ParseDtype(strings.TrimSpace(s))
	if err != nil {
		return d, inputErr("dtype", "%v", err)
	}
	if _, err := nn.Quantize(m, d); err != nil {
		return d, inputErr("dtype", "%v", err)
	}
	return d, nil
}

// EvalLM loads a language-model checkpoint, folds, checks the fold or
// quantizes it as o asks, and measures its loss on a split of o.Data.
func EvalLM(o LMEvalOptions) (LMEvalResult, error) {
	switch {
	case o.Batch < 1 || o.Batch > MaxBatch:
		return LMEvalResult{}, inputErr("batch", "must be in [1, %d], got %d", MaxBatch, o.Batch)
	case o.Seq < 0 || o.Seq > MaxSeq:
		return LMEvalResult{}, inputErr("seq", "must be in [0, %d] (0 = the model's context), got %d", MaxSeq, o.Seq)
	case o.Greedy < 0:
		return LMEvalResult{}, inputErr("n", "must be >= 0, got %d", o.Greedy)
	case o.Split != "validation" && o.Split != "test":
		return LMEvalResult{}, inputErr("split", "want validation or test, got %q", o.Split)
	}
	m, tok, _, warns, err := LoadLM(o.Checkpoint)
	if o.Warn != nil && warns != nil {
		o.Warn(warns)
	}
	if err != nil {
		return LMEvalResult{}, &models.InputError{Input: "ckpt", Err: err}
	}
	if err := CheckConfig(m.Config(), o.Want); err != nil {
		return LMEvalResult{}, err
	}
	if o.Seq > m.Context() {
		return LMEvalResult{}, inputErr("seq", "%d exceeds the model's %d positions", o.Seq, m.Context())
	}
	if o.Fold && o.FoldCheck {
		return LMEvalResult{}, inputErr("fold-check", "compares folded with unfolded itself; drop --fold")
	}
	if o.Fold {
		if err := fuse.Fold(m); err != nil {
			return LMEvalResult{}, inputErr("fold", "%v", err)
		}
	}
	if o.FoldCheck && strings.TrimSpace(o.Dtype) != "" && o.Dtype != "f32" {
		return LMEvalResult{}, inputErr("dtype", "--fold-check compares float32 models; evaluate each dtype in its own run")
	}
	dt, err := Quantize(m, o.Dtype)
	if err != nil {
		return LMEvalResult{}, err
	}
	var mf models.Decoder
	if o.FoldCheck {
		if !m.Config().NormSpec().Foldable() {
			return LMEvalResult{}, inputErr("fold-check", "model norm is %s; only prepbn folds", m.Config().NormSpec().Kind)
		}
		d, err := fuse.Copy(m)
		if err != nil {
			return LMEvalResult{}, inputErr("fold-check", "%v", err)
		}
		mf = d.(models.Decoder)
	}
	if o.Seq == 0 {
		o.Seq = m.Context()
	}
	if err := models.CheckFits(fmt.Sprintf("%s at batch %d x %d tokens", models.ConfigName(m.Config()), o.Batch, o.Seq), models.EstimateLM(m.Config(), o.Batch, o.Seq, false)); err != nil {
		return LMEvalResult{}, inputErr("batch", "%v", err)
	}
	splits, err := data.LoadTextSplits(o.Data, tok)
	if err != nil {
		return LMEvalResult{}, inputErr("data", "%v", err)
	}
	stream := map[string][]int{"validation": splits.Validation, "test": splits.Test}[o.Split]
	t0 := time.Now()
	var l float64
	var n int
	var fc *LMFoldCheck
	if mf != nil {
		c, err := fuse.CompareLM(m, mf, tok, stream, o.Batch, o.Seq, o.Prompt, o.Greedy)
		if err != nil {
			return LMEvalResult{}, err
		}
		l, n = c.Loss, c.Tokens
		fc = &LMFoldCheck{RelErr: Metric(c.RelErr), MaxAbs: Metric(c.MaxAbs), FoldedLoss: Metric(c.FoldedLoss), Prompt: o.Prompt,
			GreedyTokens: c.GreedyTokens, GreedySame: c.GreedySame, GreedyText: c.GreedyText}
	} else if l, n, err = EvaluateLM(m, stream, o.Batch, o.Seq, 0); err != nil {
		return LMEvalResult{}, err
	}
	r := LMEvalResult{Checkpoint: o.Checkpoint, Split: o.Split, Folded: o.Fold, Dtype: dt.String(), Loss: Metric(l), PPL: Metric(math.Exp(l)),
		Tokens: n, Seconds: time.Since(t0).Seconds(), FoldCheck: fc, Vocab: tok.VocabSize()}
	if err := r.baselines(o, tok, splits, stream); err != nil {
		return LMEvalResult{}, err
	}
	return r, nil
}

// baselines fills the split's out-of-vocabulary rate (word tokenizers) and,
// when asked, the bigram perplexity: what a word-level perplexity means
// depends on both (<unk> is an easy target; a bigram is the floor).
func (r *LMEvalResult) baselines(o LMEvalOptions, tok data.Tokenizer, splits *data.TextSplits, stream []int) error {
	if w, ok := tok.(interface{ OOV(string) (int, int) }); ok {
		texts, err := data.ReadTextSplits(o.Data)
		if err != nil {
			return inputErr("data", "%v", err)
		}
		oov, total := w.OOV(texts[map[string]int{"validation": 1, "test": 2}[o.Split]])
		if total > 0 {
			rate := float64(oov) / float64(total)
			r.OOVRate = &rate
		}
	}
	if !o.Bigram {
		return nil
	}
	b, err := data.NewBigram(splits.Train, tok.VocabSize())
	if err != nil {
		return inputErr("bigram", "%v", err)
	}
	ppl, n, err := b.Perplexity(stream)
	if err != nil {
		return inputErr("bigram", "%v", err)
	}
	r.BigramPPL, r.BigramTokens = &ppl, n
	return nil
}

// WriteText prints r as slab eval-lm does: the loss line, then the fold
// check's lines when there is one.
func (r LMEvalResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s %s: loss %.6f, perplexity %.3f over %d tokens (%.1f s)\n", r.Checkpoint, r.Split, float64(r.Loss), r.PPL, r.Tokens, r.Seconds)
	if r.OOVRate != nil {
		fmt.Fprintf(w, "vocabulary %d, out-of-vocabulary %.2f %% of the %s words\n", r.Vocab, 100**r.OOVRate, r.Split)
	}
	if r.BigramPPL != nil {
		fmt.Fprintf(w, "bigram (add-one, counted on the training split): perplexity %.1f over %d tokens\n", *r.BigramPPL, r.BigramTokens)
	}
	if fc := r.FoldCheck; fc != nil {
		fmt.Fprintf(w, "folded: loss %.6f; logits rel err %.3g, max abs diff %.3g; greedy: %d of %d tokens identical\n%s%s\n",
			fc.FoldedLoss, fc.RelErr, fc.MaxAbs, fc.GreedySame, fc.GreedyTokens, fc.Prompt, fc.GreedyText)
	}
}

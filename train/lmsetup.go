package train

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// BuildLM builds a language model of family f and config c with vocabulary
// vocab; an unusable vocabulary is a *models.InputError for "tokenizer".
func BuildLM(f *models.Family, c models.Config, vocab int, seed uint64) (models.Decoder, error) {
	if err := c.Set("vocab", fmt.Sprint(vocab)); err != nil {
		return nil, inputErr("tokenizer", "%v", err)
	}
	m, err := models.Build(f, c, seed)
	if err != nil {
		return nil, err
	}
	d, ok := m.(models.Decoder)
	if !ok {
		return nil, fmt.Errorf("%s (%s) does not generate", models.ConfigName(c), f.Name)
	}
	return d, nil
}

// LMSpec is what a language-model training run starts from: a resolved
// model config, a corpus and a recipe, and optionally a training checkpoint
// to continue from.
type LMSpec struct {
	Family *models.Family
	Model  models.Config // its "tokenizer" names the tokenizer
	Data   string        // corpus: sotu or a UTF-8 text file
	Recipe LMConfig      // Seq 0 = the model's context
	Resume string        // training checkpoint to continue bit for bit
}

// LMSetup is a language-model run ready to go: the model, its tokenizer,
// the corpus splits and a trainer (restored when LMSpec.Resume is set).
type LMSetup struct {
	Model     models.Decoder
	Tokenizer data.Tokenizer
	Splits    *data.TextSplits
	Trainer   *LMTrainer
	Recipe    LMConfig      // with Seq resolved
	Config    models.Config // LMSpec.Model
}

// Check reports what NewLMSetup would refuse without loading anything (the
// recipe, the tokenizer's name, the corpus and resume files), so that a
// command refuses it before claiming an output directory.
func (s LMSpec) Check() error {
	cfg := s.Recipe
	if cfg.Seq == 0 {
		cfg.Seq = 1 // the model's context, known once it is built
	}
	if err := cfg.Validate(); err != nil {
		return inputErr(strings.Fields(err.Error())[0], "%v", err)
	}
	if err := data.CheckTokenizerName(s.Model.Get("tokenizer")); err != nil {
		return inputErr("tokenizer", "%v", err)
	}
	if err := data.CheckTextSource(s.Data); err != nil {
		return inputErr("data", "%v", err)
	}
	if s.Resume != "" {
		if _, err := LMStepOf(s.Resume); err != nil {
			return inputErr("resume", "%v", err)
		}
	}
	return nil
}

// NewLMSetup builds what s describes. Errors about one of its inputs are
// *models.InputError values naming it as slab train-lm's flags do (data,
// tokenizer, seq, resume, or the recipe field at fault).
func NewLMSetup(s LMSpec) (*LMSetup, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	tok, splits, err := data.LoadNamedSplits(s.Data, s.Model.Get("tokenizer"))
	if err != nil {
		return nil, inputErr("data", "%v", err)
	}
	m, err := BuildLM(s.Family, s.Model, tok.VocabSize(), s.Recipe.Seed)
	if err != nil {
		return nil, err
	}
	cfg := s.Recipe
	if cfg.Seq == 0 {
		cfg.Seq = m.Context()
	}
	if err := cfg.Validate(); err != nil {
		return nil, inputErr(strings.Fields(err.Error())[0], "%v", err)
	}
	if err := models.CheckFits(fmt.Sprintf("%s at training batch %d x %d tokens", models.ConfigName(s.Model), cfg.Batch, cfg.Seq), models.EstimateLM(s.Model, cfg.Batch, cfg.Seq, true)); err != nil {
		return nil, inputErr("batch", "%v", err)
	}
	tr, err := NewLMTrainer(cfg, m, splits.Train)
	if err != nil {
		return nil, inputErr("seq", "%v", err)
	}
	tr.Meta = data.TokenizerMeta(tok)
	tr.Meta["data"] = s.Data
	if s.Resume != "" {
		ck, err := checkpoint.Read(s.Resume)
		if err != nil {
			return nil, inputErr("resume", "%v", err)
		}
		if err := tr.Restore(ck, s.Resume); err != nil {
			return nil, inputErr("resume", "%v", err)
		}
	}
	return &LMSetup{Model: m, Tokenizer: tok, Splits: splits, Trainer: tr, Recipe: cfg, Config: s.Model}, nil
}

// NewLM builds a randomly initialised language model of family f and
// config c with the tokenizer c names, then loads the official state dict
// in state when it is set. Errors about an input are *models.InputError
// values for "tokenizer" or "state".
func NewLM(f *models.Family, c models.Config, seed uint64, state string) (models.Decoder, data.Tokenizer, []string, error) {
	tok, err := data.NewTokenizer(c.Get("tokenizer"))
	if err != nil {
		return nil, nil, nil, inputErr("tokenizer", "%v (a tokenizer learnt from training text comes with its checkpoint: pass --ckpt)", err)
	}
	m, err := BuildLM(f, c, tok.VocabSize(), seed)
	if err != nil || state == "" {
		return m, tok, nil, err
	}
	warns, err := models.LoadStateFile(m, state)
	if err != nil {
		return nil, nil, nil, inputErr("state", "%v", err)
	}
	return m, tok, warns, nil
}

// Describe fills the fields of r that RunLM leaves to its caller (Model,
// Norm, RepBNInit, Params, LR, Tokenizer, Vocab) from s.
func (s *LMSetup) Describe(r *LMResult) {
	c := s.Config
	r.Model, r.Norm, r.Params, r.LR = models.ConfigName(c), c.NormSpec().Kind, models.NumParams(s.Model), s.Recipe.LR
	r.Tokenizer, r.Vocab = s.Tokenizer.Name(), s.Model.Vocab()
	if c.NormSpec().Kind == nn.NormPRepBN {
		r.RepBNInit = c.Get("repbn-init")
	}
}

// CheckConfig refuses a loaded model's config c when it differs from an
// option the caller asked for (want: option -> value; "model" is the
// registry name): a checkpoint's config wins, and a flag it would
// override silently is an error naming the option.
func CheckConfig(c models.Config, want map[string]string) error {
	keys := slices.Sorted(maps.Keys(want))
	for _, k := range keys {
		got := c.Get(k)
		if k == "model" {
			got = models.ConfigName(c)
		}
		if want[k] != got {
			return inputErr(k, "%q conflicts with the checkpoint, which holds %s %q: leave it out (the checkpoint's config wins)", want[k], k, got)
		}
	}
	return nil
}

package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// LMConfig is a language-model training recipe: AdamW with a linear
// warm-up and cosine decay over Steps steps of Batch windows of Seq tokens
// drawn at random from the training stream, and the PRepBN schedule as
// fractions of the steps.
type LMConfig struct {
	Steps int     `json:"steps"`
	Batch int     `json:"batch"`
	Seq   int     `json:"seq"`
	LR    float64 `json:"lr"`
	MinLR float64 `json:"min_lr"`
	// Warmup is the LR warm-up as a fraction of Steps.
	Warmup      float64 `json:"warmup"`
	WeightDecay float64 `json:"weight_decay"`
	// Clip is the global gradient-norm clip (0: off).
	Clip float64 `json:"clip"`
	// PRepBNWarm and PRepBNDecay are the fractions of Steps with the
	// LayerNorm/RMSNorm branch alone and with lambda decaying to 0.
	PRepBNWarm  float64 `json:"prepbn_warm"`
	PRepBNDecay float64 `json:"prepbn_decay"`
	Seed        uint64  `json:"seed"`
}

// DefaultLMConfig is train-lm's recipe.
func DefaultLMConfig() LMConfig {
	return LMConfig{Steps: 500, Batch: 16, LR: 1e-3, MinLR: 1e-4, Warmup: 0.02, WeightDecay: 0.1, Clip: 1,
		PRepBNWarm: 0.25, PRepBNDecay: 0.5, Seed: 1}
}

// Validate reports the first unusable field, naming the flag it comes from.
func (c LMConfig) Validate() error {
	fin := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case c.Steps < 1:
		return fmt.Errorf("steps must be >= 1, got %d", c.Steps)
	case c.Batch < 1 || c.Batch > MaxBatch:
		return fmt.Errorf("batch must be in [1, %d], got %d", MaxBatch, c.Batch)
	case c.Seq < 1 || c.Seq > MaxSeq:
		return fmt.Errorf("seq must be in [1, %d], got %d", MaxSeq, c.Seq)
	case !(c.LR > 0) || !fin(c.LR):
		return fmt.Errorf("lr must be a positive number, got %g", c.LR)
	case !(c.MinLR >= 0) || !fin(c.MinLR) || c.MinLR > c.LR:
		return fmt.Errorf("min-lr must be in [0, lr], got %g", c.MinLR)
	case !(c.Warmup >= 0 && c.Warmup <= 1):
		return fmt.Errorf("warmup must be a fraction in [0, 1], got %g", c.Warmup)
	case !(c.WeightDecay >= 0) || !fin(c.WeightDecay):
		return fmt.Errorf("wd must be >= 0, got %g", c.WeightDecay)
	case !(c.Clip >= 0) || !fin(c.Clip):
		return fmt.Errorf("clip must be >= 0 (0 = off), got %g", c.Clip)
	case !(c.PRepBNWarm >= 0 && c.PRepBNWarm <= 1):
		return fmt.Errorf("prepbn-warm must be a fraction in [0, 1], got %g", c.PRepBNWarm)
	case !(c.PRepBNDecay >= 0 && c.PRepBNDecay <= 1):
		return fmt.Errorf("prepbn-decay must be a fraction in [0, 1], got %g", c.PRepBNDecay)
	}
	return nil
}

// lmState is the scalar state of a language-model run.
type lmState struct {
	Step       int64 `json:"step"`
	OptimSteps int64 `json:"optim_steps"`
}

// LMTrainer trains a language model and owns every piece of state a
// resume needs: the weights and the PRepBN counters (through the model),
// the AdamW moments and the step. The random windows are a function of the
// seed and the step, so a resumed run draws the same data as an
// uninterrupted one.
type LMTrainer struct {
	Cfg   LMConfig
	Model models.LM
	Opt   *AdamW
	Sched Schedule
	// Step is the number of optimizer updates done.
	Step int64
	// Meta holds extra metadata Save writes (tokenizer, data source).
	Meta map[string]string

	train *data.Batcher
	drawn int64 // windows drawn from train so far (batches)
	loss  nn.VocabLoss
}

// NewLMTrainer prepares a fresh run on the training token stream and sets
// the model's PRepBN schedule from the recipe (in units of the norm's
// period: 16 training calls for the LLaMA schedule, one call per step).
func NewLMTrainer(cfg LMConfig, m models.LM, trainTokens []int) (*LMTrainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seq > m.Context() {
		return nil, fmt.Errorf("seq %d exceeds the model's %d positions", cfg.Seq, m.Context())
	}
	bt, err := data.NewBatcher(trainTokens, cfg.Batch, cfg.Seq, cfg.Seed)
	if err != nil {
		return nil, err
	}
	every := float64(max(m.Config().NormSpec().Every, 1))
	steps := float64(cfg.Steps)
	models.SetSchedule(m, int64(math.Round(cfg.PRepBNWarm*steps/every)), max(1, int64(math.Round(cfg.PRepBNDecay*steps/every))))
	t := &LMTrainer{Cfg: cfg, Model: m, Opt: NewAdamW(m.Params(), cfg.WeightDecay), train: bt,
		Sched: Schedule{BaseLR: cfg.LR, WarmupLR: cfg.LR / 100, MinLR: cfg.MinLR,
			WarmupSteps: int64(cfg.Warmup * steps), TotalSteps: int64(cfg.Steps)}}
	return t, nil
}

// TrainStep draws one batch and makes one optimizer update; it returns the
// batch's mean loss. A non-finite loss is an error and changes nothing. A
// models.LossLM (adaptive softmax) computes its loss and its gradients
// itself (ForwardLoss, BackwardLoss); any other LM goes through full logits
// and nn.VocabLoss.
func (t *LMTrainer) TrainStep() (float64, error) {
	for t.drawn < t.Step {
		t.train.Random() // a restored run draws the windows it skipped
		t.drawn++
	}
	t.train.Random()
	t.drawn++
	nn.ZeroGrads(t.Model.Params())
	var l float64
	ll, own := t.Model.(models.LossLM)
	if own {
		var err error
		if l, err = ll.ForwardLoss(t.train.Inputs, t.train.Targets, t.Cfg.Batch, t.Cfg.Seq, nn.Train); err != nil {
			return 0, err
		}
	} else {
		lg, err := t.Model.Forward(t.train.Inputs, t.Cfg.Batch, t.Cfg.Seq, nn.Train)
		if err != nil {
			return 0, err
		}
		l = t.loss.Forward(lg, t.train.Targets)
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		where := nn.LocateNonFinite(t.Model, t.Model.Norms(), func() error {
			if own {
				_, err := ll.ForwardLoss(t.train.Inputs, t.train.Targets, t.Cfg.Batch, t.Cfg.Seq, nn.Train)
				return err
			}
			_, err := t.Model.Forward(t.train.Inputs, t.Cfg.Batch, t.Cfg.Seq, nn.Train)
			return err
		})
		return l, fmt.Errorf("step %d: loss is %v; %s: training diverged; lower --lr", t.Step+1, l, where)
	}
	if limit := DivergedLoss(t.Model.Vocab()); l > limit {
		return l, fmt.Errorf("step %d: loss %.4g is above %.4g, far worse than the uniform guess of an untrained model (ln %d = %.4g): training diverged; lower --lr", t.Step+1, l, limit, t.Model.Vocab(), math.Log(float64(t.Model.Vocab())))
	}
	if own {
		ll.BackwardLoss()
	} else {
		t.Model.Backward(t.loss.Backward())
	}
	// ClipGradNorm with Clip 0 measures the norm and clips nothing.
	if gn := ClipGradNorm(t.Model.Params(), t.Cfg.Clip); !nn.IsFinite(gn) { // stop before the update writes it into the weights
		return l, fmt.Errorf("step %d: gradient norm is %v (loss %.4g); %v: training diverged; lower --lr", t.Step+1, gn, l, nn.CheckFiniteGrads(t.Model.Params()))
	}
	t.Opt.Step(t.Sched.LR(t.Step))
	t.Step++
	return l, nil
}

// EvaluateLM returns m's mean next-token loss over up to maxBatches
// sequential windows of the stream (0: all of it) and the tokens scored.
// A models.LossLM scores through ForwardLoss, any other LM through its
// logits.
func EvaluateLM(m models.LM, stream []int, B, T, maxBatches int) (float64, int, error) {
	bt, err := data.NewBatcher(stream, B, T, 0)
	if err != nil {
		return 0, 0, err
	}
	var loss nn.VocabLoss
	var sum float64
	n := 0
	ll, own := m.(models.LossLM)
	for (maxBatches <= 0 || n < maxBatches) && bt.Sequential() {
		if own {
			l, err := ll.ForwardLoss(bt.Inputs, bt.Targets, B, T, nn.Eval)
			if err != nil {
				return 0, 0, err
			}
			sum += l
		} else {
			lg, err := m.Forward(bt.Inputs, B, T, nn.Eval)
			if err != nil {
				return 0, 0, err
			}
			sum += loss.Forward(lg, bt.Targets)
		}
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("text shorter than one batch of %dx%d tokens", B, T+1)
	}
	return sum / float64(n), n * B * T, nil
}

// Save writes the run's complete state to path atomically, in the same
// checkpoint format as the vision trainer's.
func (t *LMTrainer) Save(path string) error {
	return saveTraining(path, t.Model, t.Opt, t.Meta, map[string]any{"train_config": t.Cfg,
		"state": lmState{Step: t.Step, OptimSteps: t.Opt.Steps}})
}

// LMConfigOf returns the recipe stored in a language-model training
// checkpoint.
func LMConfigOf(f *checkpoint.File, path string) (LMConfig, error) {
	var c LMConfig
	if f.Metadata["format"] != FormatTrain {
		return c, fmt.Errorf("%s: not a slab training checkpoint (format %q)", path, f.Metadata["format"])
	}
	if err := json.Unmarshal([]byte(f.Metadata["train_config"]), &c); err != nil {
		return c, fmt.Errorf("%s: damaged train_config metadata: %w", path, err)
	}
	return c, nil
}

// Restore loads the state Save wrote into a trainer built by NewLMTrainer
// for the same model and recipe: training then continues bit for bit as if
// it had never stopped.
func (t *LMTrainer) Restore(f *checkpoint.File, path string) error {
	var st lmState
	if err := restoreTraining(f, path, t.Model, t.Opt, &st); err != nil {
		return err
	}
	if st.Step < 0 || st.Step > int64(t.Cfg.Steps) {
		return fmt.Errorf("%s: step %d outside this run's %d steps", path, st.Step, t.Cfg.Steps)
	}
	t.Step, t.Opt.Steps = st.Step, st.OptimSteps
	return nil
}

// DivergedLoss is the next-token loss above which LM training has
// diverged: 4 ln(vocab) + 5. An untrained model scores about ln(vocab)
// (uniform guessing; adaptive_lm_tiny's fairseq initialisation starts at
// 2.7 ln(vocab)) and training only lowers it, so a loss that far above
// means the updates are destroying the model. A finite but exploding loss
// (train-lm --lr 10 reached perplexity 1.6e23, loss 53) would otherwise
// finish with exit 0. The bound depends on the vocabulary alone, so a
// resumed run stops where the uninterrupted one would.
func DivergedLoss(vocab int) float64 {
	return 4*math.Log(float64(max(vocab, 2))) + 5
}

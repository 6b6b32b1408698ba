package main

import (
	"cmp"
	"flag"
	"fmt"
	"slices"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// The language-model commands (train-lm, eval-lm, generate, bench-lm).
// A checkpoint is a safetensors file holding every parameter and buffer
// under its official name, the AdamW moments as optim.exp_avg[_sq].<name>,
// and metadata: lm_config (llama.Config JSON), tokenizer, step.

func init() {
	register(&command{Name: "train-lm", Summary: "train a LLaMA-style decoder (rmsnorm/layernorm/prepbn) on SOTU or a text file", Run: runCmd(cmdTrainLM), OwnSignals: true})
	register(&command{Name: "eval-lm", Summary: "perplexity of a decoder checkpoint on a text split", Run: runCmd(cmdEvalLM)})
}

// lmFlags are the model-choice flags shared by the LM commands.
type lmFlags struct {
	model, norm, init, tok string
	attn                   string
	ckpt                   string
	state                  string
	threads                *int
	seed                   uint64
	json                   bool
}

func (f *lmFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.model, "model", "lm_tiny", "model name (lm_test, lm_tiny, lm_small, lm_60m, llama_350m, optionally suffixed _rmsnorm/_layernorm/_prepbn)")
	fs.StringVar(&f.norm, "norm", "", "override the norm: rmsnorm, layernorm or prepbn")
	fs.StringVar(&f.attn, "attn", "", "override the attention: softmax (RoPE) or sla (causal simplified linear attention, O(1) decode state)")
	fs.StringVar(&f.init, "repbn-init", "", "RepBN init for prepbn: vision (alpha=gamma=1, the default) or official (all 0, docs/method.md 6.1)")
	fs.StringVar(&f.tok, "tokenizer", "", "byte, gpt2, gpt2-trim (GPT-2 BPE keeping only the training text's token types) or word (words seen 3+ times in the training text): train-lm builds the last two from --data; default: the model's own")
	fs.StringVar(&f.ckpt, "ckpt", "", "checkpoint to load (its stored config wins over --model)")
	fs.StringVar(&f.state, "state", "", "official state dict (.safetensors, or PyTorch .pth/.bin) to load into --model (with --norm, --tokenizer setting the shapes)")
	f.threads = threadsFlag(fs, "threads (0 = all cores)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.BoolVar(&f.json, "json", false, "print exactly one JSON object on stdout")
}

// overridden lists the model options given on the command line, which a
// checkpoint's own config must match (train.CheckConfig).
func overridden(fs *flag.FlagSet) map[string]string {
	want := map[string]string{}
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains([]string{"model", "norm", "attn", "repbn-init", "tokenizer"}, fl.Name) {
			want[fl.Name] = fl.Value.String()
		}
	})
	return want
}

// config resolves --model/--norm/--attn/--repbn-init/--tokenizer to a
// language model's config. The vocabulary size is the tokenizer's, set
// by the caller once it has the tokenizer.
func (f *lmFlags) config() (*models.Entry, models.Config, error) {
	e, c, err := resolveModel(f.model, map[string]string{"norm": f.norm, "attn": f.attn, "repbn-init": f.init, "tokenizer": f.tok})
	if err != nil {
		return nil, nil, err
	}
	if e.Family.Task != models.TaskLM {
		return nil, nil, flagErr("model", "%s is a %s model, not a language model", f.model, e.Family.Task)
	}
	if f.init != "" && c.NormSpec().Kind != nn.NormPRepBN { // it would be dropped
		return nil, nil, flagErr("repbn-init", "applies to prepbn only; %s uses %s", configName(c), c.NormSpec().Kind)
	}
	return e, c, nil
}

// buildLM builds a language model of config c with vocabulary vocab.
func buildLM(e *models.Entry, c models.Config, vocab int, seed uint64) (models.Decoder, error) {
	m, err := train.BuildLM(e.Family, c, vocab, seed)
	return m, modelErr(err, "")
}

// loadLM builds the language model of a checkpoint and loads its weights.
func loadLM(path string) (models.Decoder, data.Tokenizer, *checkpoint.File, error) {
	m, tok, f, warns, err := train.LoadLM(path)
	warn(warns)
	return m, tok, f, err
}

// modelFromFlags loads --ckpt or builds --model, randomly initialised
// or loaded from --state.
func (f *lmFlags) modelFromFlags(fs *flag.FlagSet) (models.Decoder, data.Tokenizer, error) {
	if f.ckpt != "" && f.state != "" {
		return nil, nil, flagErr("state", "conflicts with --ckpt (a checkpoint holds its weights): give one of them")
	}
	if f.ckpt != "" {
		m, tok, _, err := loadLM(f.ckpt)
		if err != nil {
			return nil, nil, flagErr("ckpt", "%v", err)
		}
		return m, tok, modelErr(train.CheckConfig(m.Config(), overridden(fs)), "")
	}
	if f.state == "" {
		return nil, nil, flagErr("ckpt", "is required: a trained checkpoint (or --state with --model for an official state dict), not random weights")
	}
	e, c, err := f.config()
	if err != nil {
		return nil, nil, err
	}
	m, tok, warns, err := train.NewLM(e.Family, c, f.seed, f.state)
	warn(warns)
	return m, tok, modelErr(err, "")
}

// lmTrainResult is the JSON of slab train-lm; lmPt one point of its curve.
type (
	lmTrainResult = train.LMResult
	lmPt          = train.LMPoint
)

func cmdTrainLM(args []string) error {
	fs := newFlags("train-lm", "train-lm [flags]")
	var f lmFlags
	f.register(fs)
	def := train.DefaultLMConfig()
	src := fs.String("data", "sotu", "corpus: sotu (run scripts/fetch-sotu.sh first) or a UTF-8 text file")
	steps := fs.Int("steps", def.Steps, "optimizer steps")
	batch := fs.Int("batch", def.Batch, "sequences per step")
	seq := fs.Int("seq", 0, "tokens per sequence (0 = the model's context)")
	lr := fs.Float64("lr", def.LR, "peak AdamW learning rate")
	minLR := fs.Float64("min-lr", def.MinLR, "final learning rate of the cosine decay")
	warmup := fs.Float64("warmup", def.Warmup, "LR warm-up, fraction of steps")
	wd := fs.Float64("wd", def.WeightDecay, "AdamW weight decay (matrices only)")
	clip := fs.Float64("clip", def.Clip, "global gradient-norm clip (0 = off)")
	warmFrac := fs.Float64("prepbn-warm", def.PRepBNWarm, "prepbn: fraction of steps with pure RMSNorm (LinearNorm warm)")
	decayFrac := fs.Float64("prepbn-decay", def.PRepBNDecay, "prepbn: fraction of steps over which lambda decays 1 -> 0")
	logEvery := fs.Int("log-every", 25, "print the training loss every N steps (0 = only with validation)")
	evalEvery := fs.Int("eval-every", 100, "validate every N steps (0 = only at the end)")
	evalBatches := fs.Int("eval-batches", 40, "validation batches per evaluation (0 = whole split)")
	out := fs.String("out", "", "run directory: ckpt.safetensors (written at the end and every --save-every steps) and log.jsonl")
	saveEvery := fs.Int("save-every", 0, "save every N steps (0 = only at the end)")
	resume := fs.String("resume", "", "continue bit for bit from this training checkpoint (same flags)")
	force := fs.Bool("force", false, "replace the run --out holds (checkpoint, log)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the training loop to this file")
	flagRange(fs, "[1, inf)", "steps")
	flagRange(fs, "[1, 65536]", "batch")
	flagRange(fs, "[0, 1048576]", "seq")
	flagRange(fs, "(0, inf)", "lr")
	flagRange(fs, "[0, inf)", "min-lr", "wd", "clip", "log-every", "eval-every", "eval-batches", "save-every")
	flagRange(fs, "[0, 1]", "warmup", "prepbn-warm", "prepbn-decay")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*f.threads); err != nil {
		return err
	}
	// train-lm starts from --model's initialisation; silently ignoring a
	// checkpoint the user named would train from scratch behind their back.
	if f.ckpt != "" {
		return flagErr("ckpt", "train-lm does not start from a checkpoint's weights: continue a run with --resume, or evaluate it with eval-lm")
	}
	if f.state != "" {
		return flagErr("state", "train-lm does not fine-tune an official state dict yet; it trains --model from its initialisation")
	}
	e, c, err := f.config()
	if err != nil {
		return err
	}
	spec := train.LMSpec{Family: e.Family, Model: c, Data: *src, Resume: *resume,
		Recipe: train.LMConfig{Steps: *steps, Batch: *batch, Seq: *seq, LR: *lr, MinLR: *minLR, Warmup: *warmup, WeightDecay: *wd,
			Clip: *clip, PRepBNWarm: *warmFrac, PRepBNDecay: *decayFrac, Seed: f.seed}}
	if err := spec.Check(); err != nil {
		return modelErr(err, "")
	}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	var claim *train.Claim
	if *out != "" && !lmFinished(*resume, *steps) {
		if claim, err = claimOut("train-lm", *out, *resume, *force); err != nil {
			return err
		}
		defer claim.Release()
	}
	ls, err := train.NewLMSetup(spec)
	if err != nil {
		return modelErr(err, "")
	}
	m, splits, tr := ls.Model, ls.Splits, ls.Trainer
	*seq = ls.Recipe.Seq
	w := info(f.json)
	if *resume != "" {
		fmt.Fprintf(w, "resumed %s at step %d\n", *resume, tr.Step)
	}
	ns := c.NormSpec()
	init := ""
	if ns.Kind == nn.NormPRepBN {
		init = ", init " + cmp.Or(ns.Init, nn.InitVision)
	}
	fmt.Fprintf(w, "train-lm %s (%s%s): %.2fM params, %d train / %d validation tokens, %d steps x %d x %d\n",
		configName(c), ns.Kind, init,
		float64(models.NumParams(m))/1e6, len(splits.Train), len(splits.Validation), *steps, *batch, *seq)
	if ns.Kind == nn.NormPRepBN && *steps < shortPRepBN {
		warn([]string{fmt.Sprintf("prepbn over %d steps: the move from LayerNorm to BatchNorm then takes a few dozen steps, "+
			"and such short runs of the language models have diverged here (docs/adaptive-lm.md); for a quick trial use --norm %s or %d+ steps",
			*steps, cmp.Or(ns.Base, nn.NormLayerNorm), shortPRepBN)})
	}
	run := train.LMRun{Validation: splits.Validation, EvalEvery: *evalEvery, EvalBatches: *evalBatches, LogEvery: *logEvery,
		Dir: *out, SaveEvery: *saveEvery, Resumed: *resume != "", Progress: w, Claim: claim}
	ctx, stopSignals := trainContext()
	defer stopSignals()
	run.Context = ctx
	run.LoopDone = stopProfile // the loop only, not the final evaluation
	res, err := train.RunLM(tr, run)
	if err != nil {
		return err
	}
	ls.Describe(res)
	if !res.NothingToDo {
		fmt.Fprintf(w, "final: validation loss %.4f, perplexity %.3f over %d tokens; %.0f s (%.0f train tok/s, %.0f per CPU-time; load %s -> %s)\n",
			res.ValLoss, res.ValPPL, res.ValTokens, res.Seconds, res.TokensPerSec, res.CPUTokensPerSec, res.LoadStart, res.LoadEnd)
	}
	return jsonOr(res, nil, f.json)
}

// lmFinished reports whether the checkpoint a resume continues is at its
// last step already: then train-lm trains and writes nothing, not even a
// lock in --out.
func lmFinished(resume string, steps int) bool {
	if resume == "" {
		return false
	}
	st, err := train.LMStepOf(resume)
	return err == nil && st >= int64(steps)
}

// lmEvalResult is the JSON of slab eval-lm.
type lmEvalResult = train.LMEvalResult

// shortPRepBN is the step count under which train-lm warns that a PRepBN
// schedule is too short: 22-30-step runs diverged while lambda moved to
// RepBN (adaptive_lm_tiny, adaptive_lm_small at batch 4), 300-400-step runs
// trained (docs/adaptive-lm.md).
const shortPRepBN = 300

func cmdEvalLM(args []string) error {
	fs := newFlags("eval-lm", "eval-lm --ckpt FILE [flags]")
	var f lmFlags
	f.register(fs)
	src := fs.String("data", "sotu", "corpus: sotu or a UTF-8 text file")
	split := fs.String("split", "validation", "validation or test")
	batch := fs.Int("batch", 16, "sequences per batch")
	seq := fs.Int("seq", 0, "tokens per sequence (0 = the model's context)")
	fold := fs.Bool("fold", false, "fold PRepBN into the linears first (prepbn only)")
	foldCheck := fs.Bool("fold-check", false, "prepbn: evaluate the unfolded model and compare a folded copy with it (logits over the split, greedy text)")
	prompt := fs.String("prompt", "Fellow-Citizens of the Senate and House of Representatives:", "--fold-check: prompt of the greedy comparison")
	greedyN := fs.Int("n", 100, "--fold-check: greedy tokens to compare")
	bigram := fs.Bool("bigram", false, "also score the split with an add-one bigram model counted on the training split (the baseline a trained model must beat)")
	dtype := dtypeFlag(fs)
	flagRange(fs, "[1, 65536]", "batch")
	flagRange(fs, "[0, 1048576]", "seq", "n")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*f.threads); err != nil {
		return err
	}
	if f.ckpt == "" {
		return flagErr("ckpt", "is required")
	}
	if f.state != "" {
		return flagErr("state", "conflicts with --ckpt: eval-lm evaluates a checkpoint")
	}
	if fl := fs.Lookup("seed"); fl.Value.String() != fl.DefValue {
		return flagErr("seed", "eval-lm draws nothing at random; leave it out")
	}
	res, err := train.EvalLM(train.LMEvalOptions{Checkpoint: f.ckpt, Data: *src, Split: *split, Batch: *batch, Seq: *seq,
		Fold: *fold, FoldCheck: *foldCheck, Prompt: *prompt, Greedy: *greedyN, Dtype: *dtype, Bigram: *bigram, Warn: warn, Want: overridden(fs)})
	if err != nil {
		return modelErr(err, "")
	}
	if f.json {
		return emitJSON(res)
	}
	res.WriteText(stdout)
	return nil
}

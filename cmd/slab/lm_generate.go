package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/slabml/slab"
	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "generate", Summary: "sample text from a decoder (KV cache, streaming, greedy/temperature/top-k/top-p)", Run: runCmd(cmdGenerate)})
	register(&command{Name: "bench-lm", Summary: "decode tokens/s of decoders at batch 1 (interleaved rounds, ratios, bandwidth floor), optionally evaluation tokens/s", Run: runCmd(cmdBenchLM)})
}

// genResult is the JSON of slab generate.
type genResult = slab.GenerateReport

func cmdGenerate(args []string) error {
	fs := newFlags("generate", "generate --ckpt FILE --prompt TEXT [flags]")
	var f lmFlags
	f.register(fs)
	prompt := fs.String("prompt", "Fellow-Citizens of the Senate and House of Representatives:", "prompt text")
	n := fs.Int("n", 200, "tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)")
	topK := fs.Int("top-k", 40, "sample among the k most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass (1 = off)")
	fold := fs.Bool("fold", true, "fold PRepBN into the linears (prepbn models)")
	dtype := dtypeFlag(fs)
	flagRange(fs, "[1, 1048576]", "n")
	flagRange(fs, "[0, inf)", "temperature", "top-k")
	flagRange(fs, "(0, 1]", "top-p")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*f.threads); err != nil {
		return err
	}
	m, tok, err := f.modelFromFlags(fs)
	if err != nil {
		return err
	}
	if ids, err := tok.Encode(*prompt); err != nil || len(ids) == 0 {
		return flagErr("prompt", "cannot encode %q: %v", *prompt, err)
	}
	folded := *fold && foldable(m.Config())
	var opts []slab.Option
	if *dtype != "" {
		opts = append(opts, slab.Dtype(*dtype))
	}
	if folded {
		opts = append(opts, slab.Fold())
	}
	// The API keeps a KV cache of at most the model's context and slides
	// it when prompt + n is longer.
	sm, err := slab.Wrap(m, data.TokenizerMeta(tok), opts...)
	if err != nil {
		return dtypeErr(err)
	}
	if !f.json {
		fmt.Fprint(stdout, *prompt)
	}
	t0 := time.Now()
	text, err := sm.Generate(context.Background(), *prompt, slab.GenerateOptions{Tokens: *n, Temperature: *temp, TopK: *topK, TopP: *topP, Seed: f.seed,
		Emit: func(s string) bool {
			if !f.json {
				io.WriteString(stdout, s)
			}
			return true
		}})
	el := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	res := genResult{Prompt: *prompt, Text: text, Tokens: *n, Seconds: el, TokensPerSec: float64(*n) / el, Folded: folded}
	if f.json {
		return emitJSON(res)
	}
	fmt.Fprintln(stdout)
	ids, _ := tok.Encode(*prompt)
	fmt.Fprintf(stderr, "%d tokens in %.2f s: %.1f tokens/s (prompt %d tokens included in the time)\n", *n, el, res.TokensPerSec, len(ids))
	return nil
}

// lmBenchResult is the JSON of slab bench-lm.
type lmBenchResult = bench.DecodeResult

func cmdBenchLM(args []string) error {
	fs := newFlags("bench-lm", "bench-lm --models a,b [flags]")
	names := fs.String("models", "lm_small_rmsnorm,lm_small_prepbn", "comma-separated model names (random weights)")
	promptN := fs.Int("prompt", 32, "prompt tokens")
	gen := fs.Int("generate", 128, "generated tokens")
	rounds := fs.Int("rounds", 5, "interleaved timed rounds (after one warm-up round)")
	fold := fs.Bool("fold", true, "fold PRepBN models before timing")
	tokName := fs.String("tokenizer", "", "vocabulary: byte, gpt2, or word / gpt2-trim built from --data as train-lm does (default: the model's own vocab)")
	src := fs.String("data", "sotu", "--tokenizer word or gpt2-trim: corpus whose training split sets the vocabulary")
	evalBatch := fs.Int("eval-batch", 0, "also time evaluation (eval-lm's loss over a batch of --eval-batch x --eval-seq tokens) each round; 0 = off")
	evalSeq := fs.Int("eval-seq", 0, "evaluation sequence length (0 = the model's context)")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 1, "seed of weights and prompt")
	jsonOut := fs.Bool("json", false, "print exactly one JSON object on stdout")
	dtypeList := fs.String("dtype", "f32", "comma list of weight dtypes (f32, bf16, int8): each model runs in each, interleaved")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed rounds (warm-up included) to this file")
	flagRange(fs, "[1, 1048576]", "prompt", "generate", "rounds")
	flagRange(fs, "[0, 65536]", "eval-batch")
	flagRange(fs, "[0, 1048576]", "eval-seq")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	dtypes, err := parseDtypes(*dtypeList)
	if err != nil {
		return err
	}
	vocab := 0
	learned := *tokName == data.WordName || *tokName == data.GPT2TrimName
	dataSet := false
	fs.Visit(func(fl *flag.Flag) { dataSet = dataSet || fl.Name == "data" })
	if !learned && dataSet {
		return flagErr("data", "sets the vocabulary of --tokenizer word or gpt2-trim only; bench-lm times random weights on random ids")
	}
	if learned {
		tok, _, err := data.LoadNamedSplits(*src, *tokName)
		if err != nil {
			return flagErr("data", "%v", err)
		}
		vocab = tok.VocabSize()
	} else if *tokName != "" {
		tok, err := data.NewTokenizer(*tokName)
		if err != nil {
			return flagErr("tokenizer", "%v", err)
		}
		vocab = tok.VocabSize()
	}
	ds, err := bench.Decoders(splitNames(*names), vocab, *seed, *fold)
	if err != nil {
		return modelsErr(err)
	}
	if ds, err = withDtypes(ds, dtypes); err != nil {
		return err
	}
	for _, d := range ds {
		if *promptN+*gen > d.Model.Context() {
			return flagErr("generate", "prompt+generate = %d exceeds %s's %d positions", *promptN+*gen, d.Name, d.Model.Context())
		}
	}
	if *evalBatch > 0 {
		var need models.Footprint // every model keeps its own evaluation buffers
		for _, d := range ds {
			if *evalSeq > d.Model.Context() {
				return flagErr("eval-seq", "%d exceeds %s's %d positions", *evalSeq, d.Name, d.Model.Context())
			}
			need.Activations += models.EstimateLM(d.Model.Config(), *evalBatch, cmp.Or(*evalSeq, d.Model.Context()), false).Activations
		}
		seq := "its context"
		if *evalSeq > 0 {
			seq = fmt.Sprintf("%d tokens", *evalSeq)
		}
		if err := models.CheckFits(fmt.Sprintf("evaluating %d sequences of %s on every model", *evalBatch, seq), need); err != nil {
			return flagErr("eval-batch", "%v", err)
		}
	}
	stop, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	res, err := bench.Decode(ds, bench.DecodeOptions{Prompt: *promptN, Generate: *gen, Rounds: *rounds, Seed: *seed, EvalBatch: *evalBatch, EvalSeq: *evalSeq})
	stop()
	if err != nil {
		return err
	}
	w := info(*jsonOut)
	res.WriteText(w)
	return jsonOr(res, nil, *jsonOut)
}

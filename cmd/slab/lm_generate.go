package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/llama"
)

func init() {
	register(&command{Name: "generate", Summary: "sample text from a decoder (KV cache, streaming, greedy/temperature/top-k/top-p)", Run: lmRun(cmdGenerate)})
	register(&command{Name: "bench-lm", Summary: "decode tokens/s of decoders at batch 1 (interleaved rounds, ratios, bandwidth floor)", Run: lmRun(cmdBenchLM)})
}

type genResult struct {
	Prompt       string  `json:"prompt"`
	Text         string  `json:"text"`
	Tokens       int     `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_s"`
	Folded       bool    `json:"folded"`
}

// maybeFold folds a prepbn model when asked; other norms pass unchanged.
func maybeFold(m *llama.Model, fold bool) (bool, error) {
	if !fold || m.Cfg.Norm != llama.NormPRep {
		return false, nil
	}
	return true, fuse.FuseLLaMA(m)
}

func cmdGenerate(args []string) error {
	fs := lmFlagSet("generate", "generate --ckpt FILE --prompt TEXT [flags]")
	var f lmFlags
	f.register(fs)
	prompt := fs.String("prompt", "Fellow-Citizens of the Senate and House of Representatives:", "prompt text")
	n := fs.Int("n", 200, "tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature (0 = greedy)")
	topK := fs.Int("top-k", 40, "sample among the k most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass (1 = off)")
	fold := fs.Bool("fold", true, "fold PRepBN into the linears (prepbn models)")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := lmSetThreads(f.threads); err != nil {
		return err
	}
	if *n <= 0 {
		return lmFlagErr("n", "must be positive, got %d", *n)
	}
	m, tok, err := f.modelFromFlags()
	if err != nil {
		return err
	}
	folded, err := maybeFold(m, *fold)
	if err != nil {
		return err
	}
	ids, err := tok.Encode(*prompt)
	if err != nil {
		return lmFlagErr("prompt", "%v", err)
	}
	if len(ids) == 0 {
		return lmFlagErr("prompt", "empty")
	}
	total := min(len(ids)+*n, m.Cfg.MaxSeq)
	if len(ids) >= total {
		return lmFlagErr("prompt", "%d tokens leave no room in the %d-position context", len(ids), m.Cfg.MaxSeq)
	}
	st, err := m.NewState(1, total)
	if err != nil {
		return err
	}
	smp := llama.NewSampler(*temp, *topK, *topP, f.seed)
	dec := &data.StreamDecoder{T: tok}
	var text strings.Builder
	w := lmStdout
	if !f.json {
		fmt.Fprint(w, *prompt)
	}
	var emitErr error
	t0 := time.Now()
	out, err := m.Generate(st, ids, total-len(ids), smp, nil, func(id int) bool {
		b, err := dec.Push(id)
		if err != nil {
			emitErr = err
			return false
		}
		text.Write(b)
		if !f.json {
			w.Write(b)
		}
		return true
	})
	el := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	if emitErr != nil {
		return emitErr
	}
	tail := dec.Flush()
	text.Write(tail)
	res := genResult{Prompt: *prompt, Text: text.String(), Tokens: len(out), Seconds: el, TokensPerSec: float64(len(out)) / el, Folded: folded}
	if f.json {
		return lmEmitJSON(res)
	}
	w.Write(tail)
	fmt.Fprintln(w)
	fmt.Fprintf(lmStderr, "%d tokens in %.2f s: %.1f tokens/s (prompt %d tokens included in the time)\n", len(out), el, res.TokensPerSec, len(ids))
	return nil
}

type lmBenchModel struct {
	Name         string    `json:"name"`
	Norm         string    `json:"norm"`
	Folded       bool      `json:"folded"`
	Params       int64     `json:"params"`
	WeightBytes  int64     `json:"weight_bytes_per_token"`
	TokensPerSec float64   `json:"tokens_per_s"`
	MsPerToken   float64   `json:"decode_ms_per_token"`
	PrefillMs    float64   `json:"prefill_ms"`
	FloorTokS    float64   `json:"bandwidth_floor_tokens_per_s"`
	OfFloor      float64   `json:"fraction_of_floor"`
	AllocsPerTok float64   `json:"allocs_per_token"`
	Rounds       []float64 `json:"round_tokens_per_s"`
}

type lmBenchResult struct {
	Prompt      int            `json:"prompt_tokens"`
	Generate    int            `json:"generated_tokens"`
	Batch       int            `json:"batch"`
	Rounds      int            `json:"rounds"`
	Threads     int            `json:"threads"`
	BandwidthGB float64        `json:"dram_read_gb_per_s"`
	Models      []lmBenchModel `json:"models"`
	// Ratios are tokens/s of each model over the first one (medians).
	Ratios map[string]float64 `json:"ratios_vs_first"`
	Date   string             `json:"date"`
}

func cmdBenchLM(args []string) error {
	fs := lmFlagSet("bench-lm", "bench-lm --models a,b [flags]")
	models := fs.String("models", "lm_small_rmsnorm,lm_small_prepbn", "comma-separated model names (random weights)")
	promptN := fs.Int("prompt", 32, "prompt tokens")
	gen := fs.Int("generate", 128, "generated tokens")
	rounds := fs.Int("rounds", 5, "interleaved timed rounds (after one warm-up round)")
	fold := fs.Bool("fold", true, "fold PRepBN models before timing")
	tokName := fs.String("tokenizer", "", "vocabulary: byte or gpt2 (default: the model's own vocab)")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 1, "seed of weights and prompt")
	jsonOut := fs.Bool("json", false, "print exactly one JSON object on lmStdout")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := lmSetThreads(*threads); err != nil {
		return err
	}
	if *rounds < 1 || *promptN < 1 || *gen < 1 {
		return lmFlagErr("rounds", "rounds, prompt and generate must be positive")
	}
	w := lmInfo(*jsonOut)
	type entry struct {
		m   *llama.Model
		st  *llama.State
		res lmBenchModel
		ms  []float64
	}
	var es []*entry
	for _, name := range strings.Split(*models, ",") {
		c, err := llama.Lookup(strings.TrimSpace(name))
		if err != nil {
			return lmFlagErr("models", "%v", err)
		}
		if *tokName != "" {
			tok, err := data.NewTokenizer(*tokName)
			if err != nil {
				return lmFlagErr("tokenizer", "%v", err)
			}
			c.Vocab = tok.VocabSize()
		}
		if *promptN+*gen > c.MaxSeq {
			return lmFlagErr("generate", "prompt+generate = %d exceeds %s's %d positions", *promptN+*gen, c.Name, c.MaxSeq)
		}
		m, err := llama.New(c, *seed)
		if err != nil {
			return err
		}
		folded, err := maybeFold(m, *fold)
		if err != nil {
			return err
		}
		st, err := m.NewState(1, *promptN+*gen)
		if err != nil {
			return err
		}
		wb := lmWeightBytes(m)
		es = append(es, &entry{m: m, st: st, res: lmBenchModel{Name: c.Name, Norm: c.Norm, Folded: folded, Params: c.ParamCount(), WeightBytes: wb}})
	}
	rng := rand.New(rand.NewPCG(*seed, 3))
	prompt := make([]int, *promptN)
	bw := lmBandwidth()
	fmt.Fprintf(w, "DRAM read bandwidth: %.1f GB/s\n", bw)
	smp := llama.NewSampler(0, 0, 1, *seed)
	out := make([]int, 0, *gen)
	var ms runtime.MemStats
	for r := 0; r <= *rounds; r++ {
		for _, e := range es {
			for i := range prompt {
				prompt[i] = rng.IntN(e.m.Cfg.Vocab)
			}
			// Prefill timed apart so that ms/token is the pure decode cost.
			e.st.Reset()
			t0 := time.Now()
			if _, err := e.m.Step(e.st, prompt, len(prompt)); err != nil {
				return err
			}
			pre := time.Since(t0)
			runtime.ReadMemStats(&ms)
			m0 := ms.Mallocs
			t1 := time.Now()
			var err error
			out, err = e.m.Generate(e.st, prompt, *gen, smp, out, nil)
			if err != nil {
				return err
			}
			tot := time.Since(t1)
			runtime.ReadMemStats(&ms)
			if r == 0 {
				continue // warm-up
			}
			// Generate re-runs the prefill; decode time = total - prefill.
			dec := tot - pre
			e.res.Rounds = append(e.res.Rounds, float64(*gen)/tot.Seconds())
			e.ms = append(e.ms, dec.Seconds()*1e3/float64(*gen-1))
			e.res.PrefillMs = pre.Seconds() * 1e3
			e.res.AllocsPerTok = float64(ms.Mallocs-m0) / float64(*gen)
		}
	}
	res := lmBenchResult{Prompt: *promptN, Generate: *gen, Batch: 1, Rounds: *rounds, Threads: kernels.Threads(), BandwidthGB: bw,
		Ratios: map[string]float64{}, Date: time.Now().UTC().Format(time.RFC3339)}
	for i, e := range es {
		e.res.TokensPerSec = lmMedian(e.res.Rounds)
		e.res.MsPerToken = lmMedian(e.ms)
		e.res.FloorTokS = bw * 1e9 / float64(e.res.WeightBytes)
		e.res.OfFloor = (1e3 / e.res.MsPerToken) / e.res.FloorTokS
		res.Models = append(res.Models, e.res)
		res.Ratios[e.res.Name] = e.res.TokensPerSec / es[0].res.TokensPerSec
		fmt.Fprintf(w, "%-22s %-8s folded=%-5v %7.1f tok/s  decode %7.2f ms/token  prefill %7.1f ms  floor %6.1f tok/s (%.0f%%)  allocs/token %.1f  ratio %.3f\n",
			e.res.Name, e.res.Norm, e.res.Folded, e.res.TokensPerSec, e.res.MsPerToken, e.res.PrefillMs, e.res.FloorTokS, 100*e.res.OfFloor, e.res.AllocsPerTok, res.Ratios[e.res.Name])
		_ = i
	}
	if *jsonOut {
		return lmEmitJSON(res)
	}
	return nil
}

// lmWeightBytes is what one decode step must stream from memory: every
// weight except the embedding table, of which one row is read.
func lmWeightBytes(m *llama.Model) int64 {
	var n int64
	for _, p := range m.Params() {
		n += int64(p.W.Size())
	}
	n -= int64(m.Cfg.Vocab-1) * int64(m.Cfg.Dim)
	if m.LMHead == nil {
		n += int64(m.Cfg.Vocab) * int64(m.Cfg.Dim) // tied: the table is read again as lm_head
	}
	return 4 * n
}

// lmBandwidth reads a 256 MiB buffer with all threads and returns the
// best of three passes in GB/s: the DRAM read rate a decode step can hope for.
func lmBandwidth() float64 {
	buf := make([]float32, 64<<20)
	for i := range buf {
		buf[i] = 1
	}
	best := 0.0
	sums := make([]float32, kernels.Threads())
	for rep := 0; rep < 3; rep++ {
		t0 := time.Now()
		var wg sync.WaitGroup
		T := kernels.Threads()
		chunk := len(buf) / T
		for t := 0; t < T; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				var s0, s1, s2, s3 float32
				b := buf[t*chunk : (t+1)*chunk]
				for i := 0; i+4 <= len(b); i += 4 {
					s0 += b[i]
					s1 += b[i+1]
					s2 += b[i+2]
					s3 += b[i+3]
				}
				sums[t] = s0 + s1 + s2 + s3
			}(t)
		}
		wg.Wait()
		best = max(best, float64(len(buf)*4)/time.Since(t0).Seconds()/1e9)
	}
	return best
}

func lmMedian(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

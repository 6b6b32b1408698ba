package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

func init() {
	register(&command{Name: "generate", Summary: "sample text from a decoder (KV cache, streaming, greedy/temperature/top-k/top-p)", Run: runCmd(cmdGenerate)})
	register(&command{Name: "bench-lm", Summary: "decode tokens/s of decoders at batch 1 (interleaved rounds, ratios, bandwidth floor)", Run: runCmd(cmdBenchLM)})
}

type genResult struct {
	Prompt       string  `json:"prompt"`
	Text         string  `json:"text"`
	Tokens       int     `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_s"`
	Folded       bool    `json:"folded"`
}

// maybeFold folds a model with BatchNorm-based norms when asked; other
// norms pass unchanged.
func maybeFold(m models.Model, fold bool) (bool, error) {
	if !fold || !foldable(m.Config()) {
		return false, nil
	}
	return true, fuse.Fold(m)
}

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
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(f.threads); err != nil {
		return err
	}
	if *n <= 0 {
		return flagErr("n", "must be positive, got %d", *n)
	}
	m, tok, err := f.modelFromFlags()
	if err != nil {
		return err
	}
	m.DropGrads()
	folded, err := maybeFold(m, *fold)
	if err != nil {
		return err
	}
	ids, err := tok.Encode(*prompt)
	if err != nil {
		return flagErr("prompt", "%v", err)
	}
	if len(ids) == 0 {
		return flagErr("prompt", "empty")
	}
	// The cache holds at most the model's context; Generate slides it when
	// prompt + n is longer.
	st, err := m.NewSession(1, min(len(ids)+*n, m.Context()))
	if err != nil {
		return err
	}
	smp := nn.NewSampler(*temp, *topK, *topP, f.seed)
	dec := &data.StreamDecoder{T: tok}
	var text strings.Builder
	w := stdout
	if !f.json {
		fmt.Fprint(w, *prompt)
	}
	var emitErr error
	t0 := time.Now()
	out, err := st.Generate(ids, *n, smp, nil, func(id int) bool {
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
		return emitJSON(res)
	}
	w.Write(tail)
	fmt.Fprintln(w)
	fmt.Fprintf(stderr, "%d tokens in %.2f s: %.1f tokens/s (prompt %d tokens included in the time)\n", len(out), el, res.TokensPerSec, len(ids))
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
	CPUTokS      float64   `json:"cpu_tokens_per_s"`
	FloorTokS    float64   `json:"bandwidth_floor_tokens_per_s"`
	OfFloor      float64   `json:"fraction_of_floor"`        // decode tok/s (1000 / decode_ms_per_token) over the floor
	CPUOfFloor   float64   `json:"cpu_fraction_of_floor"`    // the same by CPU time, over the CPU-time floor
	StrictFloor  float64   `json:"strict_fraction_of_floor"` // decode tok/s over the floor of the run's fastest probe
	AllocsPerTok float64   `json:"allocs_per_token"`
	Rounds       []float64 `json:"round_tokens_per_s"`
	cpuRounds    []float64
	cpuDec       []float64 // decode-only tokens per CPU-second, per round
}

type lmBenchResult struct {
	Prompt   int `json:"prompt_tokens"`
	Generate int `json:"generated_tokens"`
	Batch    int `json:"batch"`
	Rounds   int `json:"rounds"`
	Threads  int `json:"threads"`
	// BandwidthGB is the DRAM read rate the floor is set by: per round,
	// the faster of two probes over a 256 MiB buffer (a plain vector read,
	// kernels.ReadAll, and a GEMV through kernels.Gemm) run between the
	// models; the median over the rounds, like the models' tokens/s.
	BandwidthGB  float64        `json:"dram_read_gb_per_s"`
	BandwidthCPU float64        `json:"dram_read_gb_per_cpu_s"`  // the same per CPU-time
	BandwidthMax float64        `json:"dram_read_best_gb_per_s"` // the fastest single probe of the run (wall clock)
	BWRounds     []float64      `json:"dram_read_round_gb_per_s"`
	Models       []lmBenchModel `json:"models"`
	// Ratios are tokens/s of each model over the first one (medians).
	Ratios map[string]float64 `json:"ratios_vs_first"`
	// CPURatios are the same ratios from CPU-time rates.
	CPURatios map[string]float64 `json:"cpu_ratios_vs_first"`
	// NormRatios are tokens/s of each non-rmsnorm model over the rmsnorm
	// model of the same size in the run (key: model name), by wall clock
	// and by CPU time: the folded-PRepBN speed-up the paper reports.
	NormRatios    map[string]float64 `json:"norm_ratios_vs_rmsnorm"`
	CPUNormRatios map[string]float64 `json:"cpu_norm_ratios_vs_rmsnorm"`
	Date          string             `json:"date"`
	LoadAvg       string             `json:"loadavg"`
}

func cmdBenchLM(args []string) error {
	fs := newFlags("bench-lm", "bench-lm --models a,b [flags]")
	names := fs.String("models", "lm_small_rmsnorm,lm_small_prepbn", "comma-separated model names (random weights)")
	promptN := fs.Int("prompt", 32, "prompt tokens")
	gen := fs.Int("generate", 128, "generated tokens")
	rounds := fs.Int("rounds", 5, "interleaved timed rounds (after one warm-up round)")
	fold := fs.Bool("fold", true, "fold PRepBN models before timing")
	tokName := fs.String("tokenizer", "", "vocabulary: byte or gpt2 (default: the model's own vocab)")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 1, "seed of weights and prompt")
	jsonOut := fs.Bool("json", false, "print exactly one JSON object on stdout")
	if err := lmParse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if *rounds < 1 || *promptN < 1 || *gen < 1 {
		return flagErr("rounds", "rounds, prompt and generate must be positive")
	}
	w := info(*jsonOut)
	type entry struct {
		m   models.Decoder
		st  models.Session
		res lmBenchModel
		ms  []float64
		pre []float64
	}
	var es []*entry
	for _, name := range strings.Split(*names, ",") {
		e, c, err := models.Lookup(strings.TrimSpace(name))
		if err != nil {
			return flagErr("models", "%v", err)
		}
		if e.Family.Task != models.TaskLM {
			return flagErr("models", "%s is a %s model; bench-lm times language models (see slab bench)", name, e.Family.Task)
		}
		vocab, _ := strconv.Atoi(c.Get("vocab"))
		if *tokName != "" {
			tok, err := data.NewTokenizer(*tokName)
			if err != nil {
				return flagErr("tokenizer", "%v", err)
			}
			vocab = tok.VocabSize()
		}
		m, err := buildLM(e, c, vocab, *seed)
		if err != nil {
			return err
		}
		if *promptN+*gen > m.Context() {
			return flagErr("generate", "prompt+generate = %d exceeds %s's %d positions", *promptN+*gen, configName(c), m.Context())
		}
		m.DropGrads()
		norm := normOf(m)
		folded, err := maybeFold(m, *fold)
		if err != nil {
			return err
		}
		st, err := m.NewSession(1, *promptN+*gen)
		if err != nil {
			return err
		}
		wb := m.DecodeBytes()
		es = append(es, &entry{m: m, st: st, res: lmBenchModel{Name: configName(c), Norm: norm, Folded: folded, Params: models.NumParams(m), WeightBytes: wb}})
	}
	rng := rand.New(rand.NewPCG(*seed, 3))
	prompt := make([]int, *promptN)
	probe := newBWProbe()
	for range 2 {
		probe.measure() // fault the buffer in, ramp the clocks
	}
	probe.reset()
	smp := nn.NewSampler(0, 0, 1, *seed)
	out := make([]int, 0, *gen)
	var ms runtime.MemStats
	for r := 0; r <= *rounds; r++ {
		for _, e := range es {
			for i := range prompt {
				prompt[i] = rng.IntN(e.m.Vocab())
			}
			// Prefill timed apart so that ms/token is the pure decode cost.
			e.st.Reset()
			t0 := time.Now()
			if _, err := e.st.Step(prompt, len(prompt)); err != nil {
				return err
			}
			pre := time.Since(t0)
			runtime.ReadMemStats(&ms)
			m0 := ms.Mallocs
			c1 := lmCPUTime()
			t1 := time.Now()
			var err error
			out, err = e.st.Generate(prompt, *gen, smp, out, nil)
			if err != nil {
				return err
			}
			tot := time.Since(t1)
			cpu := (lmCPUTime() - c1).Seconds() / float64(kernels.Threads())
			runtime.ReadMemStats(&ms)
			if r == 0 {
				continue // warm-up
			}
			// Generate re-runs the prefill; decode time = total - prefill.
			dec := tot - pre
			e.res.Rounds = append(e.res.Rounds, float64(*gen)/tot.Seconds())
			e.res.cpuRounds = append(e.res.cpuRounds, float64(*gen)/cpu)
			e.ms = append(e.ms, dec.Seconds()*1e3/float64(*gen-1))
			e.pre = append(e.pre, pre.Seconds()*1e3)
			e.res.AllocsPerTok = float64(ms.Mallocs-m0) / float64(*gen)
			e.res.cpuDec = append(e.res.cpuDec, float64(*gen-1)/(cpu*dec.Seconds()/tot.Seconds()))
		}
		if r > 0 {
			probe.measure()
		}
	}
	bw, bwCPU, bwMax := probe.summary()
	fmt.Fprintf(w, "DRAM read bandwidth (256 MiB, faster of read and GEMV, median of %d rounds): %.1f GB/s wall, %.1f GB/s per CPU-time; best probe %.1f GB/s\n", *rounds, bw, bwCPU, bwMax)
	res := lmBenchResult{Prompt: *promptN, Generate: *gen, Batch: 1, Rounds: *rounds, Threads: kernels.Threads(), BandwidthGB: bw, BandwidthCPU: bwCPU, BandwidthMax: bwMax, BWRounds: probe.wall,
		Ratios: map[string]float64{}, CPURatios: map[string]float64{}, NormRatios: map[string]float64{}, CPUNormRatios: map[string]float64{},
		Date: time.Now().UTC().Format(time.RFC3339), LoadAvg: loadAvg()}
	for i, e := range es {
		e.res.TokensPerSec = lmMedian(e.res.Rounds)
		e.res.MsPerToken = lmMedian(e.ms)
		e.res.CPUTokS = lmMedian(e.res.cpuRounds)
		e.res.PrefillMs = lmMedian(e.pre)
		// Against the floor: the decode step alone (prefill excluded).
		wb := float64(e.res.WeightBytes)
		e.res.FloorTokS = bw * 1e9 / wb
		decTokS := 1e3 / e.res.MsPerToken
		cpuDec := lmMedian(e.res.cpuDec)
		e.res.OfFloor = decTokS / e.res.FloorTokS
		e.res.CPUOfFloor = cpuDec / (bwCPU * 1e9 / wb)
		e.res.StrictFloor = decTokS / (bwMax * 1e9 / wb)
		res.Models = append(res.Models, e.res)
		res.Ratios[e.res.Name] = e.res.TokensPerSec / es[0].res.TokensPerSec
		res.CPURatios[e.res.Name] = e.res.CPUTokS / es[0].res.CPUTokS
		fmt.Fprintf(w, "%-22s %-8s folded=%-5v %7.1f tok/s (ratio %.3f)  %7.1f tok/s per CPU-time (ratio %.3f)  decode %7.2f ms/token  prefill %7.1f ms  floor %6.1f tok/s: decode at %.0f %% (CPU %.0f %%, strict %.0f %%)  allocs/token %.2f\n",
			e.res.Name, e.res.Norm, e.res.Folded, e.res.TokensPerSec, res.Ratios[e.res.Name], e.res.CPUTokS, res.CPURatios[e.res.Name],
			e.res.MsPerToken, e.res.PrefillMs, e.res.FloorTokS, 100*e.res.OfFloor, 100*e.res.CPUOfFloor, 100*e.res.StrictFloor, e.res.AllocsPerTok)
		_ = i
	}
	// Pair every model with the rmsnorm model of the same base size.
	attn := func(e *entry) string { return e.m.Config().Get("attn") }
	base := func(e *entry) string {
		n := strings.TrimSuffix(e.res.Name, "_"+attn(e))
		return strings.TrimSuffix(n, "_"+e.res.Norm) // the norm before folding
	}
	for _, e := range es {
		if e.res.Norm == nn.NormRMSNorm {
			continue
		}
		for _, r := range es {
			if r.res.Norm == nn.NormRMSNorm && attn(r) == attn(e) && base(r) == base(e) {
				res.NormRatios[e.res.Name] = e.res.TokensPerSec / r.res.TokensPerSec
				res.CPUNormRatios[e.res.Name] = e.res.CPUTokS / r.res.CPUTokS
				fmt.Fprintf(w, "%s / %s: %.3f by wall clock, %.3f by CPU time\n", e.res.Name, r.res.Name, res.NormRatios[e.res.Name], res.CPUNormRatios[e.res.Name])
			}
		}
	}
	fmt.Fprintf(w, "load average %s\n", res.LoadAvg)
	if *jsonOut {
		return emitJSON(res)
	}
	return nil
}

// bwProbe measures the DRAM read rate a decode step is held against,
// over a 256 MiB buffer (far beyond the caches) read two ways: a plain
// vector read over all threads (kernels.ReadAll) and a GEMV through the
// path the decoder uses (kernels.Gemm with one row, 4096 rows of 64 KiB).
// Each measure keeps the faster of the two, by wall clock and by process
// CPU time (bytes per CPU-second x threads: the rate if the threads had
// their cores to themselves, which matters on a shared machine). Probing
// between the timed rounds rather than once puts the floor and the decode
// in the same machine state, and the medians compare like with like.
type bwProbe struct {
	w, x, y   []float32
	wall, cpu []float64
	best      float64
}

// The probe's matrix: 256 MiB.
const probeRows, probeCols = 4096, 16384

func newBWProbe() *bwProbe {
	p := &bwProbe{w: make([]float32, probeRows*probeCols), x: make([]float32, probeCols), y: make([]float32, probeRows)}
	for i := range p.w {
		p.w[i] = 1
	}
	return p
}

func (p *bwProbe) measure() {
	// Four sweeps per timing (~20 ms): CPU time is accounted in ticks.
	const sweeps = 4
	bytes := float64(sweeps * len(p.w) * 4)
	var wall, cpu float64
	for pass := 0; pass < 2; pass++ {
		c0 := lmCPUTime()
		t0 := time.Now()
		for range sweeps {
			if pass == 0 {
				kernels.ReadAll(p.w)
			} else {
				kernels.Gemm(false, true, 1, probeRows, probeCols, 1, p.x, probeCols, p.w, probeCols, 0, p.y, probeRows)
			}
		}
		wall = max(wall, bytes/time.Since(t0).Seconds()/1e9)
		if dc := (lmCPUTime() - c0).Seconds(); dc > 0 {
			cpu = max(cpu, bytes/(dc/float64(kernels.Threads()))/1e9)
		}
	}
	p.wall = append(p.wall, wall)
	p.cpu = append(p.cpu, cpu)
	p.best = max(p.best, wall)
}

func (p *bwProbe) reset() { p.wall, p.cpu, p.best = nil, nil, 0 }

// summary returns the median wall and CPU-time rates and the best probe.
func (p *bwProbe) summary() (wall, cpu, best float64) {
	return lmMedian(p.wall), lmMedian(p.cpu), p.best
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

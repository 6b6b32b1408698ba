package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// Decoder is one model of Decode, ready to time (folded if it is to be).
type Decoder struct {
	Name string
	// Norm is the kind of the model's norms before folding: it pairs a
	// model with the rmsnorm model of the same size.
	Norm   string
	Folded bool
	Model  models.Decoder
	// Dtype names how the Linear weights are stored ("" or "f32": as
	// built); Quant is their state (nn.GetQuant), installed before each
	// of the model's runs, so that one model serves several dtypes.
	Dtype string
	Quant nn.QuantSet
}

// DecodeOptions say what Decode times.
type DecodeOptions struct {
	Prompt, Generate int // tokens
	Rounds           int // timed rounds, after one warm-up round
	Seed             uint64
	// EvalBatch x EvalSeq is the window each model also scores per round
	// as slab eval-lm does (mean next-token loss, evaluation mode): the
	// evaluation throughput beside the decode one. EvalBatch 0 skips it;
	// EvalSeq 0 is each model's context.
	EvalBatch, EvalSeq int
}

// DecodeModel is the JSON of one model of slab bench-lm.
type DecodeModel struct {
	Name        string `json:"name"`
	Norm        string `json:"norm"`
	Folded      bool   `json:"folded"`
	Dtype       string `json:"dtype,omitempty"`
	Params      int64  `json:"params"`
	Vocab       int    `json:"vocab"`
	WeightBytes int64  `json:"weight_bytes_per_token"`
	// CacheBytes is the key/value cache a decode step reads, averaged
	// over the timed steps (Prompt+1 to Prompt+Generate-1 positions).
	CacheBytes   int64   `json:"cache_bytes_per_token"`
	TokensPerSec float64 `json:"tokens_per_s"`
	MsPerToken   float64 `json:"decode_ms_per_token"`
	PrefillMs    float64 `json:"prefill_ms"`
	CPUTokS      float64 `json:"cpu_tokens_per_s"`
	FloorTokS    float64 `json:"bandwidth_floor_tokens_per_s"`
	// The floor is the DRAM read rate over the bytes a step reads:
	// weights plus cache.
	OfFloor float64 `json:"fraction_of_floor"` // decode tok/s (1000 / decode_ms_per_token) over the floor
	// WeightOfFloor is OfFloor against the weights alone (the cache left
	// out, as bench-lm reported before 2026-12-07).
	WeightOfFloor float64   `json:"weight_fraction_of_floor"`
	CPUOfFloor    float64   `json:"cpu_fraction_of_floor"`    // the same by CPU time, over the CPU-time floor
	StrictFloor   float64   `json:"strict_fraction_of_floor"` // decode tok/s over the floor of the run's fastest probe
	AllocsPerTok  float64   `json:"allocs_per_token"`
	Rounds        []float64 `json:"round_tokens_per_s"`
	// Evaluation (DecodeOptions.EvalBatch > 0): scored tokens per second
	// of a batch EvalBatch x EvalSeq window, median of the rounds.
	EvalSeq        int       `json:"eval_seq,omitempty"`
	EvalTokS       float64   `json:"eval_tok_per_s,omitempty"`
	EvalCPUTokS    float64   `json:"eval_cpu_tok_per_s,omitempty"`
	EvalRoundsTokS []float64 `json:"eval_round_tok_per_s,omitempty"`
}

// DecodeResult is the JSON of slab bench-lm.
type DecodeResult struct {
	Prompt   int `json:"prompt_tokens"`
	Generate int `json:"generated_tokens"`
	Batch    int `json:"batch"`
	Rounds   int `json:"rounds"`
	Threads  int `json:"threads"`
	// EvalBatch is the batch of the evaluation timing (0: not timed).
	EvalBatch int `json:"eval_batch,omitempty"`
	// BandwidthGB is the DRAM read rate the floor is set by: per round,
	// the faster of two probes over a 256 MiB buffer (a plain vector read,
	// kernels.ReadAll, and a GEMV through kernels.Gemm) run between the
	// models; the median over the rounds, like the models' tokens/s.
	BandwidthGB  float64       `json:"dram_read_gb_per_s"`
	BandwidthCPU float64       `json:"dram_read_gb_per_cpu_s"`  // the same per CPU-time
	BandwidthMax float64       `json:"dram_read_best_gb_per_s"` // the fastest single probe of the run (wall clock)
	BWRounds     []float64     `json:"dram_read_round_gb_per_s"`
	Models       []DecodeModel `json:"models"`
	// Ratios are tokens/s of each model over the first one (medians).
	Ratios map[string]float64 `json:"ratios_vs_first"`
	// CPURatios are the same ratios from CPU-time rates.
	CPURatios map[string]float64 `json:"cpu_ratios_vs_first"`
	// NormRatios are tokens/s of each non-rmsnorm model over the rmsnorm
	// model of the same size in the run (the layernorm one where there is
	// no rmsnorm model; key: model name), by wall clock and by CPU time:
	// the folded-PRepBN speed-up the paper reports.
	NormRatios    map[string]float64 `json:"norm_ratios_vs_rmsnorm"`
	CPUNormRatios map[string]float64 `json:"cpu_norm_ratios_vs_rmsnorm"`
	Date          string             `json:"date"`
	LoadAvg       string             `json:"loadavg"`
	// Pairs are the (model, rmsnorm model) pairs of NormRatios, in order.
	Pairs [][2]string `json:"-"`
}

// Decode times batch-1 greedy decoding of every model, interleaved: one
// warm-up round, then Rounds rounds in which each model prefills a random
// prompt and generates, and the bandwidth probe runs once. Prefill is
// timed apart, so ms per token is the pure decode cost.
func Decode(ds []Decoder, o DecodeOptions) (*DecodeResult, error) {
	if o.Rounds < 1 || o.Prompt < 1 || o.Generate < 1 {
		return nil, fmt.Errorf("bench: rounds, prompt and generate must be positive, got %d, %d, %d", o.Rounds, o.Prompt, o.Generate)
	}
	type entry struct {
		d                Decoder
		st               models.Session
		res              DecodeModel
		ms, pre, cpu, cd []float64
		ev               *lmEval
	}
	es := make([]*entry, len(ds))
	for i, d := range ds {
		if o.Prompt+o.Generate > d.Model.Context() {
			return nil, fmt.Errorf("bench: prompt+generate = %d exceeds %s's %d positions", o.Prompt+o.Generate, d.Name, d.Model.Context())
		}
		st, err := d.Model.NewSession(1, o.Prompt+o.Generate)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", d.Name, err)
		}
		if d.Quant != nil {
			nn.SetQuant(d.Model, d.Quant)
		}
		// Low-precision Linears read fewer bytes: the dtype's own floor.
		wb := d.Model.DecodeBytes() - int64(nn.QuantSavedBytes(d.Model))
		// The timed steps feed positions Prompt .. Prompt+Generate-2.
		var cb int64
		for pos := o.Prompt; pos <= o.Prompt+o.Generate-2; pos++ {
			cb += d.Model.CacheBytes(pos)
		}
		cb /= int64(max(1, o.Generate-1))
		es[i] = &entry{d: d, st: st, res: DecodeModel{Name: d.Name, Norm: d.Norm, Folded: d.Folded, Dtype: d.Dtype, Params: models.NumParams(d.Model), Vocab: d.Model.Vocab(), WeightBytes: wb, CacheBytes: cb}}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 3))
	if o.EvalBatch > 0 {
		for _, e := range es {
			var err error
			if e.ev, err = newLMEval(e.d.Model, e.d.Name, o.EvalBatch, o.EvalSeq, rng); err != nil {
				return nil, err
			}
			e.res.EvalSeq = e.ev.T
		}
	}
	prompt := make([]int, o.Prompt)
	probe := NewProbe()
	for range 2 {
		probe.Measure() // fault the buffer in, ramp the clocks
	}
	probe.Reset()
	smp := nn.NewSampler(0, 0, 1, o.Seed)
	out := make([]int, 0, o.Generate)
	gen := o.Generate
	var ms runtime.MemStats
	for r := 0; r <= o.Rounds; r++ {
		for _, e := range es {
			for i := range prompt {
				prompt[i] = rng.IntN(e.d.Model.Vocab())
			}
			if e.d.Quant != nil {
				nn.SetQuant(e.d.Model, e.d.Quant)
			}
			e.st.Reset()
			t0 := time.Now()
			if _, err := e.st.Step(prompt, len(prompt)); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", e.d.Name, err)
			}
			pre := time.Since(t0)
			runtime.ReadMemStats(&ms)
			m0 := ms.Mallocs
			c1 := CPUTime()
			t1 := time.Now()
			var err error
			if out, err = e.st.Generate(prompt, gen, smp, out, nil); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", e.d.Name, err)
			}
			tot := time.Since(t1)
			cpu := (CPUTime() - c1).Seconds() / float64(kernels.Threads())
			runtime.ReadMemStats(&ms)
			if e.ev != nil {
				if err := e.ev.run(r > 0); err != nil {
					return nil, fmt.Errorf("bench: %s: evaluation: %w", e.d.Name, err)
				}
			}
			if r == 0 {
				continue // warm-up
			}
			// Generate re-runs the prefill; decode time = total - prefill.
			dec := tot - pre
			e.res.Rounds = append(e.res.Rounds, float64(gen)/tot.Seconds())
			e.cpu = append(e.cpu, float64(gen)/cpu)
			e.ms = append(e.ms, dec.Seconds()*1e3/float64(gen-1))
			e.pre = append(e.pre, pre.Seconds()*1e3)
			e.res.AllocsPerTok = float64(ms.Mallocs-m0) / float64(gen)
			e.cd = append(e.cd, float64(gen-1)/(cpu*dec.Seconds()/tot.Seconds()))
		}
		if r > 0 {
			probe.Measure()
		}
	}
	bw, bwCPU, bwMax := probe.Summary()
	res := &DecodeResult{Prompt: o.Prompt, Generate: gen, Batch: 1, Rounds: o.Rounds, Threads: kernels.Threads(), BandwidthGB: bw, BandwidthCPU: bwCPU, BandwidthMax: bwMax, BWRounds: probe.Wall,
		Ratios: map[string]float64{}, CPURatios: map[string]float64{}, NormRatios: map[string]float64{}, CPUNormRatios: map[string]float64{},
		Date: time.Now().UTC().Format(time.RFC3339), LoadAvg: LoadAvg(), EvalBatch: o.EvalBatch}
	for _, e := range es {
		if e.ev != nil {
			e.res.EvalTokS, e.res.EvalCPUTokS, e.res.EvalRoundsTokS = Median(e.ev.wall), Median(e.ev.cpu), e.ev.wall
		}
		e.res.TokensPerSec = Median(e.res.Rounds)
		e.res.MsPerToken = Median(e.ms)
		e.res.CPUTokS = Median(e.cpu)
		e.res.PrefillMs = Median(e.pre)
		// Against the floor: the decode step alone (prefill excluded).
		wb := float64(e.res.WeightBytes + e.res.CacheBytes)
		e.res.FloorTokS = bw * 1e9 / wb
		decTokS := 1e3 / e.res.MsPerToken
		e.res.OfFloor = decTokS / e.res.FloorTokS
		e.res.WeightOfFloor = decTokS / (bw * 1e9 / float64(e.res.WeightBytes))
		e.res.CPUOfFloor = Median(e.cd) / (bwCPU * 1e9 / wb)
		e.res.StrictFloor = decTokS / (bwMax * 1e9 / wb)
		res.Models = append(res.Models, e.res)
		res.Ratios[e.res.Name] = e.res.TokensPerSec / es[0].res.TokensPerSec
		res.CPURatios[e.res.Name] = e.res.CPUTokS / es[0].res.CPUTokS
	}
	// Pair every model with the rmsnorm model of the same base size, or,
	// when the run has none, with the layernorm one (the baseline of
	// families without RMSNorm, such as the adaptive-input LMs).
	attn := func(e *entry) string { return e.d.Model.Config().Get("attn") }
	base := func(e *entry) string {
		n := strings.TrimSuffix(e.res.Name, "/"+e.d.Dtype)
		n = strings.TrimSuffix(n, "_"+attn(e))
		return strings.TrimSuffix(n, "_"+e.res.Norm) // the norm before folding
	}
	for _, e := range es {
		for _, norm := range []string{nn.NormRMSNorm, nn.NormLayerNorm} {
			if e.res.Norm == norm {
				break
			}
			found := false
			for _, r := range es {
				if r.res.Norm == norm && attn(r) == attn(e) && base(r) == base(e) && r.d.Dtype == e.d.Dtype {
					res.NormRatios[e.res.Name] = e.res.TokensPerSec / r.res.TokensPerSec
					res.CPUNormRatios[e.res.Name] = e.res.CPUTokS / r.res.CPUTokS
					res.Pairs = append(res.Pairs, [2]string{e.res.Name, r.res.Name})
					found = true
				}
			}
			if found {
				break
			}
		}
	}
	return res, nil
}

//go:build unix

// Command lowprec measures batch-1 decode of LLaMA-style models with
// float32, bf16 and int8 weights (nn.Quantize) against each dtype's own
// memory-bandwidth floor, in one process: every round decodes each model
// in each dtype, then probes the DRAM read rate (256 MiB, the faster of
// kernels.ReadAll and a float32 GEMV, as slab bench-lm does), and the
// figures are medians over the rounds.
//
// A dtype's floor is the probed read rate over the bytes one decode step
// actually reads: every Linear weight as stored (bf16: 2 bytes, int8: 1
// byte plus a 4-byte scale per group), the other parameters in float32,
// and one row of the embedding table.
//
//	go run ./tools/lowprec -models llama_350m_rmsnorm,llama_350m_prepbn -dtypes f32,bf16,int8
//
// It stands in for `slab bench-lm --dtype` until the CLI carries dtypes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/llama"
	"github.com/slabml/slab/nn"
)

type row struct {
	Model        string    `json:"model"`
	Dtype        string    `json:"dtype"`
	BytesPerTok  int64     `json:"bytes_per_token"`
	TokS         float64   `json:"decode_tokens_per_s"`
	FloorTokS    float64   `json:"floor_tokens_per_s"`
	OfFloor      float64   `json:"fraction_of_floor"`
	CPUOfFloor   float64   `json:"cpu_fraction_of_floor"`
	VsF32        float64   `json:"speedup_vs_f32"`
	LogitRelErr  float64   `json:"logit_rel_err_vs_f32"`
	SameTokens   int       `json:"greedy_tokens_same_as_f32"`
	AllocsPerTok float64   `json:"allocs_per_token"`
	Rounds       []float64 `json:"round_decode_tokens_per_s"`
	cpu          []float64
	toks         []int
}

type result struct {
	Date      string    `json:"date"`
	Threads   int       `json:"threads"`
	Rounds    int       `json:"rounds"`
	Prompt    int       `json:"prompt_tokens"`
	Generate  int       `json:"generated_tokens"`
	BWGB      float64   `json:"dram_read_gb_per_s"`
	BWCPUGB   float64   `json:"dram_read_gb_per_cpu_s"`
	BWRounds  []float64 `json:"dram_read_round_gb_per_s"`
	BF16Dot   bool      `json:"bf16_vdpbf16ps"`
	LoadAvg   string    `json:"loadavg"`
	Rows      []*row    `json:"rows"`
	bwCPURnds []float64
}

func main() {
	models := flag.String("models", "llama_350m_rmsnorm,llama_350m_prepbn", "comma-separated model names (random weights)")
	dtypes := flag.String("dtypes", "f32,bf16,int8", "comma-separated weight dtypes")
	rounds := flag.Int("rounds", 5, "interleaved timed rounds (after one warm-up round)")
	promptN := flag.Int("prompt", 16, "prompt tokens")
	gen := flag.Int("generate", 64, "generated tokens per round")
	threads := flag.Int("threads", 0, "threads (0: all cores)")
	dot := flag.Bool("bf16dot", false, "bf16 GEMVs round x to bf16 and use VDPBF16PS")
	jsonOut := flag.String("json", "", "also write the result as JSON to this file")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lowprec:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "lowprec:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*models, *dtypes, *rounds, *promptN, *gen, *threads, *dot, *jsonOut); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "lowprec:", err)
		os.Exit(1)
	}
}

type entry struct {
	name  string
	m     *llama.Model
	st    *llama.State
	sets  []nn.QuantSet
	rows  []*row
	other int64 // bytes read per token outside the Linear weights
}

func run(models, dtypes string, rounds, promptN, gen, threads int, dot bool, jsonOut string) error {
	if threads > 0 {
		kernels.SetThreads(threads)
	}
	kernels.SetBF16Dot(dot)
	var dts []kernels.Dtype
	for _, s := range strings.Split(dtypes, ",") {
		d, err := kernels.ParseDtype(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-dtypes: %w", err)
		}
		dts = append(dts, d)
	}
	var es []*entry
	for _, name := range strings.Split(models, ",") {
		c, err := llama.Lookup(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("-models: %w", err)
		}
		if promptN+gen > c.MaxSeq {
			return fmt.Errorf("-generate: prompt+generate %d exceeds %s's %d positions", promptN+gen, c.Name, c.MaxSeq)
		}
		m, err := llama.New(c, 1)
		if err != nil {
			return err
		}
		m.DropGrads()
		if c.Norm == llama.NormPRep {
			if err := fuse.Fold(m); err != nil {
				return err
			}
		}
		st, err := m.NewState(1, promptN+gen)
		if err != nil {
			return err
		}
		e := &entry{name: c.Name, m: m, st: st}
		var all, lin int64
		for _, p := range m.Params() {
			all += int64(p.W.Size())
		}
		for _, l := range linears(m) {
			lin += int64(l.Weight.W.Size())
		}
		e.other = 4 * (all - lin - int64(c.Vocab-1)*int64(c.Dim))
		if m.LMHead == nil {
			e.other += 4 * int64(c.Vocab) * int64(c.Dim)
		}
		for _, d := range dts {
			t0 := time.Now()
			if _, err := nn.QuantizeWith(m, d, nn.QuantOptions{Keep: true}); err != nil {
				return err
			}
			e.sets = append(e.sets, nn.GetQuant(m))
			e.rows = append(e.rows, &row{Model: c.Name, Dtype: d.String(), BytesPerTok: e.other + int64(nn.WeightBytes(m))})
			fmt.Fprintf(os.Stderr, "%s %v: %.1f MB per token (quantized in %.1f s)\n", c.Name, d, float64(e.rows[len(e.rows)-1].BytesPerTok)/1e6, time.Since(t0).Seconds())
		}
		es = append(es, e)
	}
	res := result{Date: time.Now().UTC().Format(time.RFC3339), Threads: kernels.Threads(), Rounds: rounds, Prompt: promptN, Generate: gen, BF16Dot: dot}
	probe := newProbe()
	probe.measure() // fault the buffer in, ramp the clocks
	probe.measure()
	probe.wall, probe.cpu = nil, nil
	rng := rand.New(rand.NewPCG(1, 3))
	prompt := make([]int, promptN)
	smp := nn.NewSampler(0, 0, 1, 1)
	var out []int
	for r := 0; r <= rounds; r++ {
		for _, e := range es {
			for i := range prompt {
				prompt[i] = rng.IntN(e.m.Cfg.Vocab)
			}
			var ref []float32
			for di, d := range dts {
				nn.SetQuant(e.m, e.sets[di])
				rw := e.rows[di]
				e.st.Reset()
				lg, err := e.m.Step(e.st, prompt, len(prompt))
				if err != nil {
					return err
				}
				if r == 1 {
					if d == kernels.F32 || ref == nil {
						ref = slices.Clone(lg.Data)
					} else {
						rw.LogitRelErr = relErr(lg.Data, ref)
					}
				}
				// Prefill timed apart, as slab bench-lm does: Generate
				// re-runs it, and decode time = Generate's time - prefill.
				e.st.Reset()
				pre := time.Now()
				if _, err := e.m.Step(e.st, prompt, len(prompt)); err != nil {
					return err
				}
				preDur := time.Since(pre)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				m0 := ms.Mallocs
				t0, c0 := time.Now(), cpuTime()
				out, err = e.m.Generate(e.st, prompt, gen, smp, out[:0], nil)
				if err != nil {
					return err
				}
				tot := time.Since(t0)
				cpu := (cpuTime() - c0).Seconds() / float64(kernels.Threads())
				runtime.ReadMemStats(&ms)
				if r == 0 {
					continue
				}
				dec := tot - preDur
				rw.Rounds = append(rw.Rounds, float64(gen-1)/dec.Seconds())
				rw.cpu = append(rw.cpu, float64(gen-1)/(cpu*dec.Seconds()/tot.Seconds()))
				rw.AllocsPerTok = float64(ms.Mallocs-m0) / float64(gen)
				if r == 1 {
					rw.toks = slices.Clone(out)
				}
			}
			nn.SetQuant(e.m, e.sets[0])
		}
		if r > 0 {
			probe.measure()
		}
	}
	res.BWRounds = probe.wall
	res.BWGB, res.BWCPUGB = median(probe.wall), median(probe.cpu)
	res.LoadAvg = loadAvg()
	fmt.Printf("%s, %d threads, %d rounds, prompt %d, %d generated; DRAM read %.1f GB/s wall (median; rounds %v), %.1f GB/s per CPU-time; load %s\n",
		res.Date, res.Threads, rounds, promptN, gen, res.BWGB, fmtList(probe.wall), res.BWCPUGB, res.LoadAvg)
	fmt.Printf("%-22s %-5s %10s %9s %9s %8s %8s %8s %10s %6s\n", "model", "dtype", "MB/token", "tok/s", "floor", "%floor", "%cpuflr", "vs f32", "logit err", "same")
	for _, e := range es {
		f32 := 0.0
		for di, rw := range e.rows {
			rw.TokS = median(rw.Rounds)
			rw.FloorTokS = res.BWGB * 1e9 / float64(rw.BytesPerTok)
			rw.OfFloor = rw.TokS / rw.FloorTokS
			rw.CPUOfFloor = median(rw.cpu) / (res.BWCPUGB * 1e9 / float64(rw.BytesPerTok))
			if dts[di] == kernels.F32 {
				f32 = rw.TokS
			}
			if f32 > 0 {
				rw.VsF32 = rw.TokS / f32
			}
			for i := range min(len(rw.toks), len(e.rows[0].toks)) {
				if rw.toks[i] == e.rows[0].toks[i] {
					rw.SameTokens++
				} else {
					break
				}
			}
			fmt.Printf("%-22s %-5s %10.1f %9.2f %9.2f %7.1f%% %7.1f%% %8.3f %10.2e %3d/%d\n", rw.Model, rw.Dtype, float64(rw.BytesPerTok)/1e6,
				rw.TokS, rw.FloorTokS, 100*rw.OfFloor, 100*rw.CPUOfFloor, rw.VsF32, rw.LogitRelErr, rw.SameTokens, len(rw.toks))
			res.Rows = append(res.Rows, rw)
		}
	}
	if jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// linears lists the model's Linear layers.
func linears(m *llama.Model) []*nn.Linear {
	var ls []*nn.Linear
	for _, b := range m.Blocks {
		ls = append(ls, b.Attn.Q, b.Attn.K, b.Attn.V, b.Attn.O, b.MLP.Gate, b.MLP.Up, b.MLP.Down)
	}
	if m.LMHead != nil {
		ls = append(ls, m.LMHead)
	}
	return ls
}

func relErr(a, ref []float32) float64 {
	var d, n float64
	for i, v := range ref {
		e := float64(a[i]) - float64(v)
		d += e * e
		n += float64(v) * float64(v)
	}
	return math.Sqrt(d / max(n, 1e-300))
}

// probe is the DRAM read-rate probe of slab bench-lm: a 256 MiB matrix
// read by kernels.ReadAll and by a float32 GEMV, the faster kept.
type probe struct {
	w, x, y   []float32
	wall, cpu []float64
}

const probeRows, probeCols = 4096, 16384

func newProbe() *probe {
	p := &probe{w: make([]float32, probeRows*probeCols), x: make([]float32, probeCols), y: make([]float32, probeRows)}
	for i := range p.w {
		p.w[i] = 1
	}
	return p
}

func (p *probe) measure() {
	const sweeps = 4
	bytes := float64(sweeps * len(p.w) * 4)
	var wall, cpu float64
	for pass := range 2 {
		c0, t0 := cpuTime(), time.Now()
		for range sweeps {
			if pass == 0 {
				kernels.ReadAll(p.w)
			} else {
				kernels.Gemm(false, true, 1, probeRows, probeCols, 1, p.x, probeCols, p.w, probeCols, 0, p.y, probeRows)
			}
		}
		wall = max(wall, bytes/time.Since(t0).Seconds()/1e9)
		if dc := (cpuTime() - c0).Seconds(); dc > 0 {
			cpu = max(cpu, bytes/(dc/float64(kernels.Threads()))/1e9)
		}
	}
	p.wall = append(p.wall, wall)
	p.cpu = append(p.cpu, cpu)
}

func median(x []float64) float64 {
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

func fmtList(x []float64) string {
	var b strings.Builder
	for i, v := range x {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f", v)
	}
	return b.String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

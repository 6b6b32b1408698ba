package adaptive_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/adaptive"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// stream is a word-like token stream: Zipf-distributed ids with some
// repeated structure, so a few steps of training move every band.
func stream(n, vocab int) []int {
	rng := rand.New(rand.NewPCG(4, 4))
	z := rand.NewZipf(rng, 1.1, 1, uint64(vocab-1))
	s := make([]int, n)
	for i := range s {
		if i%7 == 3 {
			s[i] = (s[i-1]*3 + 1) % vocab
		} else {
			s[i] = int(z.Uint64())
		}
	}
	return s
}

// trainer builds the named model and an LMTrainer of steps steps whose
// PRepBN schedule ends (lambda 0) halfway.
func trainer(t *testing.T, name string, steps, batch, seq int, toks []int, mod func(*adaptive.Config)) *train.LMTrainer {
	t.Helper()
	e, c, err := models.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(c.(*adaptive.Config))
	}
	m, err := models.Build(e.Family, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq, cfg.PRepBNWarm, cfg.PRepBNDecay, cfg.LR = steps, batch, seq, 0.1, 0.4, 3e-3
	tr, err := train.NewLMTrainer(cfg, m.(models.LM), toks)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func run(t *testing.T, tr *train.LMTrainer, upto int) {
	t.Helper()
	for tr.Step < int64(upto) {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is every parameter, buffer, gradient and AdamW moment by name.
func snapshot(tr *train.LMTrainer) map[string][]float32 {
	s := map[string][]float32{}
	for k, e := range models.StateDict(tr.Model) {
		s[k] = e.F32
		if e.I64 != nil {
			for _, v := range e.I64 {
				s[k] = append(s[k], float32(v))
			}
		}
	}
	for i, p := range tr.Opt.Params() {
		s["grad:"+p.Name] = append([]float32(nil), p.G.Data...)
		s["adam.m:"+p.Name] = tr.Opt.M[i]
		s["adam.v:"+p.Name] = tr.Opt.V[i]
	}
	return s
}

func differing(a, b map[string][]float32) []string {
	var d []string
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			d = append(d, k)
		}
	}
	slices.Sort(d)
	return d
}

// withDropout turns on dropout and tail dropout, so that the tests cover
// the model's generator.
func withDropout(c *adaptive.Config) { c.Dropout, c.TailDropout = 0.1, 0.2 }

// TestTrainingThreadInvariant: a few LMTrainer steps at 1 and 2 threads
// leave every parameter, buffer, gradient and AdamW moment bitwise equal,
// with dropout on, for the adaptive (PRepBN and LayerNorm) and full
// outputs, on shapes where the kernels split their work.
func TestTrainingThreadInvariant(t *testing.T) {
	toks := stream(20000, 600)
	big := func(c *adaptive.Config) {
		withDropout(c)
		c.Vocab, c.Dim, c.Hidden, c.MaxSeq = 600, 64, 256, 64
	}
	for _, name := range []string{"adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_layernorm", "adaptive_lm_tiny_full_prepbn"} {
		var ref map[string][]float32
		for _, th := range []int{1, 2} {
			old := kernels.Threads()
			kernels.SetThreads(th)
			tr := trainer(t, name, 3, 8, 64, toks, big)
			run(t, tr, 3)
			kernels.SetThreads(old)
			s := snapshot(tr)
			if ref == nil {
				ref = s
				continue
			}
			d := differing(ref, s)
			t.Logf("%s: %d of %d tensors differ between 1 and 2 threads", name, len(d), len(ref))
			if len(d) > 0 {
				t.Errorf("%s: differ at 2 threads: %v", name, d)
			}
		}
	}
}

// TestResumeBitExact: an LMTrainer run saved after 3 of 7 steps and
// resumed ends bitwise equal to the uninterrupted run (dropout on: its
// generator follows the saved call counter).
func TestResumeBitExact(t *testing.T) {
	toks := stream(6000, 200)
	for _, name := range []string{"adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_full"} {
		straight := trainer(t, name, 7, 2, 16, toks, withDropout)
		run(t, straight, 7)
		first := trainer(t, name, 7, 2, 16, toks, withDropout)
		run(t, first, 3)
		path := filepath.Join(t.TempDir(), "ckpt.safetensors")
		if err := first.Save(path); err != nil {
			t.Fatal(err)
		}
		f, err := checkpoint.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		second := trainer(t, name, 7, 2, 16, toks, withDropout)
		if err := second.Restore(f, path); err != nil {
			t.Fatal(err)
		}
		run(t, second, 7)
		d := differing(snapshot(straight), snapshot(second))
		t.Logf("%s: %d tensors differ after resume", name, len(d))
		if len(d) > 0 {
			t.Errorf("%s: differ after resume: %v", name, d)
		}
	}
}

// TestFoldExact: a trained PRepBN model (schedule finished) folded into
// q/k/v and fc1 gives the unfolded model's log-probabilities within 1e-5
// relative and the same greedy tokens; its checkpoint reloads as the
// folded layout; LayerNorm refuses to fold.
func TestFoldExact(t *testing.T) {
	toks := stream(6000, 200)
	for _, name := range []string{"adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_full_prepbn"} {
		tr := trainer(t, name, 12, 4, 32, toks, withDropout)
		run(t, tr, 12)
		m := tr.Model.(*adaptive.Model)
		if l := models.Lambda(m); l != 0 {
			t.Fatalf("%s: lambda %g after the schedule", name, l)
		}
		fm, err := fuse.Copy(m)
		if err != nil {
			t.Fatal(err)
		}
		f := fm.(*adaptive.Model)
		if f.Cfg.Norm != adaptive.NormNone {
			t.Errorf("%s: folded norm %q", name, f.Cfg.Norm)
		}
		const B, T = 2, 32
		ids := toks[100 : 100+B*T]
		a, err := m.Forward(ids, B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), a.Data...)
		b, err := f.Forward(ids, B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		folded := append([]float32(nil), b.Data...)
		// Relative to the largest score: log-probabilities near 0 carry
		// the absolute rounding of their neighbours.
		worst, scale := 0.0, 0.0
		for i, w := range want {
			worst = max(worst, math.Abs(float64(b.Data[i]-w)))
			scale = max(scale, math.Abs(float64(w)))
		}
		worst /= scale
		lu, err := m.ForwardLoss(ids, toks[101:101+B*T], B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		lf, err := f.ForwardLoss(ids, toks[101:101+B*T], B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: folded vs unfolded scores max rel diff %.3g; loss %.7g vs %.7g", name, worst, lf, lu)
		if worst > 1e-5 || math.Abs(lf-lu) > 1e-5*lu {
			t.Errorf("%s: folded differs: scores %.3g, loss %.7g vs %.7g", name, worst, lf, lu)
		}
		gen := func(d models.Decoder) []int {
			s, err := d.NewSession(1, 32)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Generate(ids[:5], 40, nn.NewSampler(0, 0, 1, 1), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		gu, gf := gen(m), gen(f)
		if !slices.Equal(gu, gf) {
			t.Errorf("%s: greedy tokens differ:\n%v\n%v", name, gu, gf)
		}
		// The folded checkpoint rebuilds the folded layout.
		path := filepath.Join(t.TempDir(), "folded.safetensors")
		ck, err := models.WeightsFile(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.Write(path, ck); err != nil {
			t.Fatal(err)
		}
		back, _, _, err := models.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := back.(*adaptive.Model).Forward(ids, B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		d := 0.0
		for i, v := range c.Data {
			d = max(d, math.Abs(float64(v-folded[i])))
		}
		if d != 0 {
			t.Errorf("%s: reloaded folded model differs by %.3g", name, d)
		}
	}
	ln, err := models.New("adaptive_lm_tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := fuse.Fold(ln); err == nil {
		t.Error("a LayerNorm model folded")
	}
}

// TestDecodeNoAlloc: after warm-up a decode step (and its sampling from
// the full distribution) allocates nothing, for the folded PRepBN and the
// LayerNorm models, adaptive and full outputs.
func TestDecodeNoAlloc(t *testing.T) {
	for _, name := range []string{"adaptive_lm_tiny_prepbn", "adaptive_lm_tiny", "adaptive_lm_tiny_full"} {
		mm, err := models.New(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		m := mm.(*adaptive.Model)
		if m.Cfg.Norm == adaptive.NormPRep {
			if err := fuse.Fold(m); err != nil {
				t.Fatal(err)
			}
		}
		st, err := m.NewState(1, m.Cfg.MaxSeq)
		if err != nil {
			t.Fatal(err)
		}
		smp := nn.NewSampler(0.8, 0, 1, 1)
		ids := []int{1}
		step := func() {
			if st.Len() == m.Cfg.MaxSeq {
				st.Reset()
			}
			lg, err := m.Step(st, ids, 1)
			if err != nil {
				t.Fatal(err)
			}
			ids[0] = smp.Sample(lg.Data)
		}
		for range 4 {
			step()
		}
		a := testing.AllocsPerRun(50, step)
		t.Logf("%s: %.1f allocations per decode step", name, a)
		if a != 0 {
			t.Errorf("%s: decode step allocates %.1f times", name, a)
		}
	}
}

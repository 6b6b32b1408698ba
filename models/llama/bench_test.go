package llama_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/llama"
	"github.com/slabml/slab/nn"
)

// BenchmarkDecode times one KV-cached decode step (batch 1) and reports its
// allocations, which must be zero in steady state:
//
//	go test -run XXX -bench Decode -benchmem ./models/llama/
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchNames() {
		b.Run(name, func(b *testing.B) {
			c, err := llama.Lookup(name)
			if err != nil {
				b.Fatal(err)
			}
			m, err := llama.New(c, 1)
			if err != nil {
				b.Fatal(err)
			}
			if c.Norm == llama.NormPRep {
				if err := fuse.Fold(m); err != nil {
					b.Fatal(err)
				}
			}
			st, _ := m.NewState(1, 160)
			smp := nn.NewSampler(0.8, 40, 0.95, 1)
			ids := []int{1}
			step := func() {
				if st.Len() == 160 {
					st.Reset()
				}
				lg, err := m.Step(st, ids, 1)
				if err != nil {
					b.Fatal(err)
				}
				ids[0] = smp.Sample(lg.Data)
			}
			for i := 0; i < 8; i++ {
				step()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// TestDecodeNoAlloc: after warm-up a decode step and a sampling step
// allocate nothing.
func TestDecodeNoAlloc(t *testing.T) {
	for _, tc := range []struct {
		name string
		tied bool
	}{{"lm_test_prepbn", false}, {"lm_test_rmsnorm", false}, {"lm_test_rmsnorm", true}, {"lm_test_layernorm", false}} {
		decodeNoAlloc(t, tc.name, tc.tied)
	}
}

func decodeNoAlloc(t *testing.T, name string, tied bool) {
	c, _ := llama.Lookup(name)
	c.Tied = tied
	m, _ := llama.New(c, 1)
	if c.Norm == llama.NormPRep {
		if err := fuse.Fold(m); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := m.NewState(1, c.MaxSeq)
	smp := nn.NewSampler(0.8, 5, 0.9, 1)
	ids := []int{1}
	step := func() {
		if st.Len() == c.MaxSeq {
			st.Reset()
		}
		lg, err := m.Step(st, ids, 1)
		if err != nil {
			t.Fatal(err)
		}
		ids[0] = smp.Sample(lg.Data)
	}
	for i := 0; i < 4; i++ {
		step()
	}
	a := testing.AllocsPerRun(50, step)
	t.Logf("%s (tied %v): %.1f allocations per decode step", name, tied, a)
	if a != 0 {
		t.Errorf("%s (tied %v): decode step allocates %.1f times", name, tied, a)
	}
}

func benchNames() []string {
	return []string{"lm_small_rmsnorm", "lm_small_prepbn", "lm_small_prepbn_sla", "lm_small_bpe_rmsnorm", "lm_small_bpe_prepbn", "lm_60m_rmsnorm", "lm_60m_prepbn", "llama_350m_rmsnorm", "llama_350m_prepbn"}
}

// BenchmarkTrainStep times one training step (forward, loss, backward; no
// optimizer) of lm_small_bpe at batch 8 x 256 with the output vocabulary
// at GPT-2's full 50,257, the SOTU-trimmed 24,254 and 256 (bytes), so the
// differences are the cost of the vocabulary projection and its loss:
//
//	go test -run XXX -bench TrainStep -benchtime 5x ./models/llama/
func BenchmarkTrainStep(b *testing.B) {
	for _, v := range []int{50257, 24254, 256} {
		b.Run(fmt.Sprintf("vocab%d", v), func(b *testing.B) {
			c, err := llama.Lookup("lm_small_bpe_rmsnorm")
			if err != nil {
				b.Fatal(err)
			}
			c.Vocab = v
			m, err := llama.New(c, 1)
			if err != nil {
				b.Fatal(err)
			}
			const B, T = 8, 256
			rng := rand.New(rand.NewPCG(1, 2))
			ids, tgt := make([]int, B*T), make([]int, B*T)
			for i := range ids {
				ids[i], tgt[i] = rng.IntN(v), rng.IntN(v)
			}
			var loss nn.VocabLoss
			step := func() {
				lg, err := m.Forward(ids, B, T, nn.Train)
				if err != nil {
					b.Fatal(err)
				}
				loss.Forward(lg, tgt)
				m.Backward(loss.Backward())
			}
			step()
			b.ResetTimer()
			c0 := userCPU()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(b.N*B*T)/b.Elapsed().Seconds(), "tok/s")
			// On the shared machine the CPU-time rate (tokens per CPU-second
			// times the threads) is the stable figure.
			if dc := userCPU() - c0; dc > 0 {
				b.ReportMetric(float64(b.N*B*T)/(dc/float64(kernels.Threads())), "cputok/s")
			}
		})
	}
}

// TestGenerateNoAlloc: once a state has served one generation, a whole
// new generation (prefill of a 32-token prompt, then decoding) allocates
// nothing, so bench-lm's allocation count is zero too.
func TestGenerateNoAlloc(t *testing.T) {
	for _, name := range []string{"lm_test_rmsnorm", "lm_test_prepbn"} {
		c, _ := llama.Lookup(name)
		c.MaxSeq = 64
		m, _ := llama.New(c, 1)
		if c.Norm == llama.NormPRep {
			if err := fuse.Fold(m); err != nil {
				t.Fatal(err)
			}
		}
		st, _ := m.NewState(1, 48)
		prompt := make([]int, 32)
		for i := range prompt {
			prompt[i] = i % c.Vocab
		}
		smp := nn.NewSampler(0, 0, 1, 1)
		out := make([]int, 0, 16)
		gen := func() {
			var err error
			if out, err = m.Generate(st, prompt, 16, smp, out, nil); err != nil {
				t.Fatal(err)
			}
		}
		gen()
		if a := testing.AllocsPerRun(5, gen); a != 0 {
			t.Errorf("%s: a 32+16-token generation allocates %.1f times", name, a)
		}
	}
}

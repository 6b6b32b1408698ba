package llama_test

import (
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models/llama"
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
				if err := fuse.FuseLLaMA(m); err != nil {
					b.Fatal(err)
				}
			}
			st, _ := m.NewState(1, 160)
			smp := llama.NewSampler(0.8, 40, 0.95, 1)
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
		if err := fuse.FuseLLaMA(m); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := m.NewState(1, c.MaxSeq)
	smp := llama.NewSampler(0.8, 5, 0.9, 1)
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
	return []string{"lm_small_rmsnorm", "lm_small_prepbn", "lm_small_prepbn_sla", "lm_small_bpe_rmsnorm", "lm_small_bpe_prepbn", "lm_60m_rmsnorm", "lm_60m_prepbn"}
}

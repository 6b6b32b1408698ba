package llama

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// TestTiedQuantized: quantizing a model whose output is tied to the
// embedding stores the table in low precision too. The quantized model
// must then behave as the float32 model whose every matrix (table
// included) holds the dequantized values: lookups read the stored rows,
// the head multiplies by them, and a decode step agrees with a prompt.
func TestTiedQuantized(t *testing.T) {
	for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
		q := testModel(t, NormRMS, true)
		n, err := nn.Quantize(q, dt)
		if err != nil {
			t.Fatal(err)
		}
		if want := 7*len(q.Blocks) + 1; n != want {
			t.Errorf("%v: %d Linears quantized, want %d (the blocks' and the tied table)", dt, n, want)
		}
		if !nn.Stored(q.Embed.Weight) || len(q.Embed.Weight.W.Data) != 0 {
			t.Fatalf("%v: the tied table is not stored in low precision", dt)
		}

		// The float32 twin: every matrix replaced by its dequantized values.
		ref := testModel(t, NormRMS, true)
		for _, p := range ref.Params() {
			if len(p.W.Shape) != 2 {
				continue
			}
			r, c := p.W.Shape[0], p.W.Shape[1]
			qm, err := kernels.Quantize(dt, p.W.Data, r, c)
			if err != nil {
				t.Fatal(err)
			}
			qm.DequantizeRows(0, r, p.W.Data)
			p.MarkChanged()
		}

		rng := rand.New(rand.NewPCG(5, 5))
		const T = 7
		ids := randIDs(rng, T, q.Cfg.Vocab)
		emb, err := q.Embed.Forward(ids[:1])
		if err != nil {
			t.Fatal(err)
		}
		D := q.Cfg.Dim
		for j := range D {
			if w := ref.Embed.Weight.W.Data[ids[0]*D+j]; emb.Data[j] != w {
				t.Fatalf("%v: looked-up value %d = %v, stored table holds %v", dt, j, emb.Data[j], w)
			}
		}
		want, err := ref.Forward(ids, 1, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Forward(ids, 1, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		scale, worst := 0.0, 0.0
		for i, w := range want.Data {
			scale = math.Max(scale, math.Abs(float64(w)))
			worst = math.Max(worst, math.Abs(float64(got.Data[i]-w)))
		}
		// A prompt of a decode-marked model multiplies by dequantized
		// strips of the stored weights (nn.MarkDecode): the twin's
		// products up to summation order.
		t.Logf("%v: max |logit - dequantized float32 twin| %.3g of max |logit| %.3g", dt, worst, scale)
		if worst > 1e-5*scale {
			t.Errorf("%v: logits differ from the dequantized twin by %.3g (max |logit| %.3g)", dt, worst, scale)
		}

		// A decode step's GEMVs read the stored table as the prompt did.
		s, err := q.NewState(1, T)
		if err != nil {
			t.Fatal(err)
		}
		lg, err := q.Step(s, ids, T)
		if err != nil {
			t.Fatal(err)
		}
		prompt := append([]float32(nil), lg.Data...)
		s.Reset()
		if _, err := q.Step(s, ids[:T-1], T-1); err != nil {
			t.Fatal(err)
		}
		if lg, err = q.Step(s, ids[T-1:], 1); err != nil {
			t.Fatal(err)
		}
		// The GEMVs keep x exact (bf16) or quantize it to int16 (int8).
		step := 0.0
		for j, v := range lg.Data {
			step = math.Max(step, math.Abs(float64(v-prompt[j])))
		}
		t.Logf("%v: max |decoded - prompt logit| %.3g", dt, step)
		if step > 1e-4*scale {
			t.Errorf("%v: decoded logits differ from the prompt's by %.3g", dt, step)
		}

		// Kept beside float32 (benchmarks switching dtypes), the lookup
		// still reads the values the head multiplies by.
		k := testModel(t, NormRMS, true)
		if _, err := nn.QuantizeWith(k, dt, nn.QuantOptions{Keep: true}); err != nil {
			t.Fatal(err)
		}
		ke, err := k.Embed.Forward(ids[:1])
		if err != nil {
			t.Fatal(err)
		}
		for j := range D {
			if w := ref.Embed.Weight.W.Data[ids[0]*D+j]; ke.Data[j] != w {
				t.Fatalf("%v kept: looked-up value %d = %v, head's table holds %v", dt, j, ke.Data[j], w)
			}
		}

		if _, err := q.FoldSites(); err == nil || !strings.Contains(err.Error(), "model.embed_tokens.weight") {
			t.Errorf("%v: untying a stored table: %v", dt, err)
		}
	}
}

package llama

import (
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

// TestReference compares the decoder with tools/reference/llama_ref.py (our
// PyTorch decoder written from the equations, float64): training-mode
// logits, loss and every parameter gradient of one call after pre_calls
// earlier training calls (which move the PRepBN counters and BN statistics),
// the buffers afterwards, and eval-mode logits.
func TestReference(t *testing.T) {
	for _, name := range []string{"llama_rmsnorm", "llama_layernorm", "llama_prepbn_pre19", "llama_prepbn_pre35"} {
		t.Run(name, func(t *testing.T) {
			fx := reftest.Load(t, name)
			num := func(k string) int { return int(fx.Num(k)) }
			c := Config{Name: name, Vocab: num("vocab"), Dim: num("dim"), Layers: num("layers"), Heads: num("heads"),
				KVHeads: num("kv_heads"), HeadDim: num("head_dim"), Hidden: num("hidden"), MaxSeq: num("T"),
				RopeBase: fx.Num("rope_base"), Eps: float32(fx.Num("eps")), Norm: fx.Config["norm"].(string),
				RepBNInit: InitVis, Warm: int64(num("warm")), Step: int64(num("step")), InitStd: 0.02}
			m, err := New(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				copy(p.W.Data, fx.T("param/"+p.Name).Data)
			}
			for _, b := range m.Buffers() {
				if b.I != nil {
					*b.I = fx.Ints("buffer/" + b.Name)[0]
				} else {
					copy(b.F.Data, fx.T("buffer/"+b.Name).Data)
				}
			}
			B, T := num("B"), num("T")
			ids, targets := fx.Labels("ids"), fx.Labels("targets")
			for i := 0; i < int(fx.Ints("pre_calls")[0]); i++ {
				if _, err := m.Forward(ids, B, T, nn.Train); err != nil {
					t.Fatal(err)
				}
			}
			if c.Norm == NormPRep {
				lam := m.Norm.(*nn.LinearNorm).Lambda()
				if want := fx.Scalar("lambda"); lam != want {
					t.Fatalf("lambda before the recorded call = %g, want %g", lam, want)
				}
			}
			nn.ZeroGrads(m.Params())
			lg, err := m.Forward(ids, B, T, nn.Train)
			if err != nil {
				t.Fatal(err)
			}
			tol := reftest.Tol{Rel: 1e-4, Abs: 1e-6}
			reftest.Close(t, "train logits", lg.Data, fx.T("train_logits").Data, tol)
			var loss nn.VocabLoss
			l := loss.Forward(lg, targets)
			reftest.Close(t, "loss", []float32{float32(l)}, fx.T("loss").Data, tol)
			m.Backward(loss.Backward())
			for _, p := range m.Params() {
				reftest.Close(t, "grad "+p.Name, p.G.Data, fx.T("grad/"+p.Name).Data, reftest.Tol{Rel: 2e-4, Abs: 1e-6})
			}
			for _, b := range m.Buffers() {
				if b.I != nil {
					if want := fx.Ints("buffer_after/" + b.Name)[0]; *b.I != want {
						t.Errorf("buffer %s = %d, want %d", b.Name, *b.I, want)
					}
				} else {
					reftest.Close(t, "buffer "+b.Name, b.F.Data, fx.T("buffer_after/"+b.Name).Data, tol)
				}
			}
			ev, err := m.Forward(ids, B, T, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.Close(t, "eval logits", ev.Data, fx.T("eval_logits").Data, tol)
		})
	}
}

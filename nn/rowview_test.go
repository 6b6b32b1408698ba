package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// viewsOnly is a module that lists a stacked Linear's row views only, as
// a model exposing the official q and kv names of one qkv Linear does.
type viewsOnly struct{ q, kv *Linear }

func (m viewsOnly) Params() []*Param   { return append(m.q.Params(), m.kv.Params()...) }
func (m viewsOnly) Buffers() []*Buffer { return nil }

// TestRowView: views share the stacked Linear's storage; Prepack and
// Unpack through the views reach the stacked Linear; writing a view with
// MarkChanged makes the packed weight stale, so the next Forward reads the
// new rows (bit-identical to an unpacked Linear with the same weights).
func TestRowView(t *testing.T) {
	const in, dim = 8, 4
	l := NewLinear("qkv", in, 3*dim, true)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range l.Params() {
		for i := range p.W.Data {
			p.W.Data[i] = float32(rng.NormFloat64())
		}
	}
	m := viewsOnly{RowView("q", l, 0, dim), RowView("kv", l, dim, 2*dim)}
	if got := m.kv.Weight.W.Data[0]; got != l.Weight.W.Data[dim*in] {
		t.Fatalf("kv view starts at %g, want row %d of qkv (%g)", got, dim, l.Weight.W.Data[dim*in])
	}
	if len(m.kv.Bias.W.Data) != 2*dim || m.kv.Weight.W.Shape[0] != 2*dim {
		t.Fatalf("kv view shapes %v / %v", m.kv.Weight.W.Shape, m.kv.Bias.W.Shape)
	}
	Prepack(m)
	if !l.Packed() {
		t.Fatal("Prepack of the views left the stacked Linear unpacked")
	}
	x := tensor.New(5, in)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	l.Forward(x) // builds the pack
	m.kv.Weight.W.Data[3] += 1
	m.kv.Weight.MarkChanged()
	got := l.Forward(x).Clone()
	ref := NewLinear("ref", in, 3*dim, true)
	copy(ref.Weight.W.Data, l.Weight.W.Data)
	copy(ref.Bias.W.Data, l.Bias.W.Data)
	want := ref.Forward(x)
	for i := range want.Data {
		if got.Data[i] != want.Data[i] {
			t.Fatalf("output %d after a view's change: %g, want %g (stale pack)", i, got.Data[i], want.Data[i])
		}
	}
	Unpack(m)
	if l.Packed() {
		t.Error("Unpack of the views left the stacked Linear packed")
	}
}

// TestRowViewQuantize: Quantize of a module listing only the views stores
// the stacked Linear (its Forward reads the low-precision weight) and
// counts the views as the module's Linears; the
// views report Stored with their rows of it, and the views' entries,
// loaded into a fresh float32 twin with UseQuantized, stack back to the
// same weight: bit-identical outputs. A missing view is refused by name.
func TestRowViewQuantize(t *testing.T) {
	const in, dim = 128, 16
	build := func() (*Linear, viewsOnly) {
		l := NewLinear("qkv", in, 3*dim, true)
		rng := rand.New(rand.NewPCG(3, 4))
		for _, p := range l.Params() {
			for i := range p.W.Data {
				p.W.Data[i] = float32(rng.NormFloat64())
			}
		}
		return l, viewsOnly{RowView("q", l, 0, dim), RowView("kv", l, dim, 2*dim)}
	}
	x := tensor.New(5, in)
	for i := range x.Data {
		x.Data[i] = float32(i%7) - 3
	}
	for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
		l, m := build()
		want := append([]float32(nil), l.Forward(x).Data...)
		n, err := Quantize(m, dt)
		if err != nil || n != 2 {
			t.Fatalf("%v: Quantize = %d, %v; want the two Linears the module lists (q and kv)", dt, n, err)
		}
		if l.Dtype() != dt || !Stored(m.q.Weight) || !Stored(m.kv.Weight) || m.kv.Weight.W.Data != nil {
			t.Fatalf("%v: stacked %v, views stored %v/%v, kv data %d", dt, l.Dtype(), Stored(m.q.Weight), Stored(m.kv.Weight), len(m.kv.Weight.W.Data))
		}
		got := l.Forward(x).Data
		var num, den float64
		for i := range got {
			num += math.Pow(float64(got[i]-want[i]), 2)
			den += math.Pow(float64(want[i]), 2)
		}
		rel := math.Sqrt(num / den)
		t.Logf("%v: stacked Linear vs float32, relative L2 error %.2e", dt, rel)
		if rel > 0.02 || rel == 0 {
			t.Errorf("%v: quantized forward's relative error %.2e, want in (0, 0.02]", dt, rel)
		}
		if q := StoredWeight(m.kv.Weight); q.N != 2*dim || q.K != in {
			t.Fatalf("%v: kv's stored weight is [%d,%d]", dt, q.N, q.K)
		}
		entries := QuantizedWeights(m)
		if len(entries) != 2 || entries["q.weight"] == nil || entries["kv.weight"] == nil {
			t.Fatalf("%v: QuantizedWeights gave %d entries", dt, len(entries))
		}
		l2, m2 := build()
		if err := UseQuantized(m2, entries, "test"); err != nil {
			t.Fatal(err)
		}
		again := l2.Forward(x).Data
		for i := range got {
			if again[i] != got[i] {
				t.Fatalf("%v: reloaded views give %g at %d, quantized model %g", dt, again[i], i, got[i])
			}
		}
		_, m3 := build()
		if err := UseQuantized(m3, map[string]*kernels.QMatrix{"q.weight": entries["q.weight"]}, "test"); err == nil || !strings.Contains(err.Error(), "rows 16..47") {
			t.Errorf("%v: a missing kv view: %v", dt, err)
		}
	}
}

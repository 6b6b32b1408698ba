package nn

import (
	"math/rand/v2"
	"testing"

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

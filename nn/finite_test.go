package nn

import (
	"math"
	"strings"
	"testing"

	"github.com/slabml/slab/tensor"
)

func TestFirstNonFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, c := range []struct {
		xs   []float32
		want int
	}{{nil, -1}, {[]float32{1, 2, 3}, -1}, {[]float32{1, nan, 3}, 1}, {[]float32{-inf}, 0}, {[]float32{math.MaxFloat32, 0, inf}, 2}} {
		if got := FirstNonFinite(c.xs); got != c.want {
			t.Errorf("FirstNonFinite(%v) = %d, want %d", c.xs, got, c.want)
		}
	}
	x := tensor.New(2, 3)
	x.Data[4] = nan
	err := CheckFinite("input", x)
	if err == nil || !strings.Contains(err.Error(), "[1 1]") {
		t.Fatalf("CheckFinite: %v", err)
	}
	t.Log(err)
}

// twoBlock is a pre-norm residual stack small enough to build by hand:
// x -> stem -> [norm1 -> attn] + -> [norm2 -> mlp] + -> norm -> head.
type twoBlock struct {
	stem, attn, mlp, head *Linear
	norm1, norm2, norm    Norm
	poison                bool // the attention's output overflows
}

func (m *twoBlock) Params() []*Param {
	var ps []*Param
	for _, mod := range []Module{m.stem, m.norm1, m.attn, m.norm2, m.mlp, m.norm, m.head} {
		ps = append(ps, mod.Params()...)
	}
	return ps
}

func (m *twoBlock) Buffers() []*Buffer { return nil }

func (m *twoBlock) slots() []NormSlot {
	return []NormSlot{{Name: "blocks.0.norm1", Norm: &m.norm1}, {Name: "blocks.0.norm2", Norm: &m.norm2}, {Name: "norm", Norm: &m.norm}}
}

func (m *twoBlock) forward(x *tensor.Tensor) *tensor.Tensor {
	h := m.stem.Forward(x).Clone()
	a := m.attn.Forward(m.norm1.Forward(h, Train))
	if m.poison {
		a.Data[1] = float32(math.Inf(1))
	}
	for i := range h.Data {
		h.Data[i] += a.Data[i]
	}
	f := m.mlp.Forward(m.norm2.Forward(h, Train))
	for i := range h.Data {
		h.Data[i] += f.Data[i]
	}
	return m.head.Forward(m.norm.Forward(h, Train))
}

// A non-finite value born in the attention's output is blamed on the
// attention: the first norm whose input is not finite is norm2, and the
// parameters between norm1 and norm2 are the attention's.
func TestLocateNonFinite(t *testing.T) {
	const d = 4
	spec := NormSpec{Kind: NormLayerNorm, Eps: 1e-6}
	m := &twoBlock{stem: NewLinear("patch_embed.proj", d, d, true), attn: NewLinear("blocks.0.attn.proj", d, d, true),
		mlp: NewLinear("blocks.0.mlp.fc1", d, d, true), head: NewLinear("head", d, 2, true),
		norm1: spec.New("blocks.0.norm1", d), norm2: spec.New("blocks.0.norm2", d), norm: spec.New("norm", d)}
	for _, p := range m.Params() {
		for i := range p.W.Data {
			p.W.Data[i] = 0.1 * float32(i%5)
		}
	}
	x := tensor.New(3, d)
	for i := range x.Data {
		x.Data[i] = float32(i) / 7
	}
	run := func() error { m.forward(x); return nil }
	if got := LocateNonFinite(m, m.slots(), run); !strings.Contains(got, "head (after the last norm, norm; every norm's input and output finite)") {
		t.Fatalf("finite model: %s", got)
	}
	// Finite weights, but the attention's output overflows.
	m.poison = true
	got := LocateNonFinite(m, m.slots(), run)
	t.Log(got)
	if !strings.Contains(got, "first non-finite output: blocks.0.attn.proj (input of blocks.0.norm2; blocks.0.norm1's input finite)") {
		t.Fatalf("overflowing attention: %s", got)
	}
	if _, ok := m.norm1.(*probedNorm); ok {
		t.Fatal("norms not restored")
	}
	// A weight that is itself NaN is named directly.
	m.mlp.Bias.W.Data[2] = float32(math.NaN())
	got = LocateNonFinite(m, m.slots(), run)
	t.Log(got)
	if !strings.Contains(got, "tensor blocks.0.mlp.fc1.bias holds NaN at [2]") {
		t.Fatalf("NaN weight: %s", got)
	}
}

// The gradient named is the one backward reaches first: the last
// parameter, in forward order, holding a NaN or an infinity.
func TestCheckFiniteGrads(t *testing.T) {
	ps := []*Param{NewParam("embed.weight", false, 2, 2), NewParam("blocks.0.attn.weight", false, 3), NewParam("head.weight", false, 2)}
	if err := CheckFiniteGrads(ps); err != nil {
		t.Fatal(err)
	}
	ps[0].G.Data[1] = float32(math.NaN())
	ps[1].G.Data[2] = float32(math.Inf(1))
	err := CheckFiniteGrads(ps)
	if err == nil || !strings.Contains(err.Error(), "the gradient of blocks.0.attn.weight holds +Inf at [2]") {
		t.Fatalf("CheckFiniteGrads: %v", err)
	}
	t.Log(err)
}

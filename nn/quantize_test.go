package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// quantModel is a few Linears for Quantize (a Module of their params).
type quantModel []*Linear

func (m quantModel) Params() []*Param {
	var ps []*Param
	for _, l := range m {
		ps = append(ps, l.Params()...)
	}
	return ps
}

func (m quantModel) Buffers() []*Buffer { return nil }

// TestLinearQuantized: a quantized Linear's Forward (one row: GEMV; five
// rows: GEMM), LinearForward and SharedForward match the float64
// reference of the same quantized weights, give the same bits on 1 and 2
// threads and through every entry point, and Quantize(F32) restores the
// float32 results exactly (the float32 weights kept: QuantOptions.Keep).
func TestLinearQuantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	defer kernels.SetThreads(kernels.Threads())
	in := 96
	m := quantModel{NewLinear("a", in, 40, true), NewLinear("b", in, 13, true), NewLinear("c", in, 64, false)}
	for _, l := range m {
		randFill(rng, 1, l.Weight.W)
		if l.Bias != nil {
			randFill(rng, 1, l.Bias.W)
		}
	}
	for _, rows := range []int{1, 5} {
		x := tensor.New(rows, in)
		randFill(rng, 1, x)
		var f32 []*tensor.Tensor
		for _, l := range m {
			f32 = append(f32, l.Forward(x).Clone())
		}
		for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
			if n, err := QuantizeWith(m, dt, QuantOptions{Keep: true}); err != nil || n != 3 {
				t.Fatalf("Quantize(%v): %d layers, %v", dt, n, err)
			}
			worst := 0.0
			ys := make([]*tensor.Tensor, 3)
			SharedForward(x, ys, m...)
			for i, l := range m {
				if l.Dtype() != dt {
					t.Fatalf("%s: dtype %v, want %v", l.Weight.Name, l.Dtype(), dt)
				}
				shared := ys[i].Clone()
				kernels.SetThreads(1)
				one := l.Forward(x).Clone()
				kernels.SetThreads(2)
				two := LinearForward(l, x).Clone()
				dq := make([]float32, l.Out*l.In)
				l.QWeight().DequantizeRows(0, l.Out, dq)
				for r := range rows {
					for j := range l.Out {
						var s, mag float64
						for p := range in {
							v := float64(x.Data[r*in+p]) * float64(dq[j*in+p])
							s += v
							mag += math.Abs(v)
						}
						if l.Bias != nil {
							s += float64(l.Bias.W.Data[j])
							mag += math.Abs(float64(l.Bias.W.Data[j]))
						}
						got := one.Data[r*l.Out+j]
						e := math.Abs(float64(got)-s) / mag
						worst = max(worst, e)
						// The int8 GEMV (one row) reads x as int16 per
						// group: up to 2^-16 of the group's max |x| each.
						tol := 1e-5
						if dt == kernels.Int8 && rows == 1 {
							tol = 5e-5
						}
						if dt == kernels.BF16 && rows > 1 {
							tol = 1.0 / 512 // the bf16 GEMM rounds x to bf16 (kernels.SetBF16Gemm)
						}
						if dt == kernels.Int8 && rows > 1 {
							tol = 1.0 / 128 // the int8 GEMM quantizes x per group to 8 bits (kernels.SetInt8Gemm)
						}
						if e > tol {
							t.Errorf("%v %s rows %d: y[%d,%d] = %v, float64 %v", dt, l.Weight.Name, rows, r, j, got, s)
						}
						if two.Data[r*l.Out+j] != got || shared.Data[r*l.Out+j] != got {
							t.Fatalf("%v %s rows %d: y[%d,%d] 1 thread %v, 2 threads %v, shared %v", dt, l.Weight.Name, rows, r, j, got, two.Data[r*l.Out+j], shared.Data[r*l.Out+j])
						}
					}
				}
			}
			t.Logf("%v rows %d: max error / magnitude sum %.3g", dt, rows, worst)
		}
		if _, err := Quantize(m, kernels.F32); err != nil {
			t.Fatal(err)
		}
		for i, l := range m {
			y := l.Forward(x)
			for j, v := range f32[i].Data {
				if y.Data[j] != v {
					t.Fatalf("%s back to f32: y[%d] = %v, was %v", l.Weight.Name, j, y.Data[j], v)
				}
			}
		}
	}
}

// TestLinearQuantizedStale: a weight changed (MarkChanged) after
// Quantize is quantized again; Backward through a quantized Linear
// panics with a message naming it.
func TestLinearQuantizedStale(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	l := NewLinear("s", 32, 8, false)
	randFill(rng, 1, l.Weight.W)
	m := quantModel{l}
	if _, err := QuantizeWith(m, kernels.BF16, QuantOptions{Keep: true}); err != nil {
		t.Fatal(err)
	}
	x := tensor.New(1, 32)
	randFill(rng, 1, x)
	before := l.Forward(x).Clone()
	l.Weight.W.Data[0] += 10
	l.Weight.MarkChanged()
	after := l.Forward(x)
	if after.Data[0] == before.Data[0] {
		t.Fatal("changed weight not re-quantized")
	}
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("Backward through bf16 weights did not panic")
		} else {
			t.Logf("Backward: %v", r)
		}
	}()
	l.Backward(tensor.New(1, 8))
}

// TestMLPInferQuantized: MLP.Infer (GELU fused into fc1's GEMM) through
// quantized weights gives the bits of the float32 Infer on the
// dequantized weights.
func TestMLPInferQuantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	defer kernels.SetInt8Gemm(kernels.SetInt8Gemm(false)) // exact x: the dequantizing GEMM
	defer kernels.SetBF16Gemm(kernels.SetBF16Gemm(false)) // exact x: the dequantizing GEMM
	for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
		m := NewMLP("mlp", 64, 128)
		for _, p := range m.Params() {
			randFill(rng, 0.2, p.W)
		}
		x := tensor.New(7, 64)
		randFill(rng, 1, x)
		if _, err := QuantizeWith(m, dt, QuantOptions{Keep: true}); err != nil {
			t.Fatal(err)
		}
		got := m.Infer(x).Clone()
		for _, l := range []*Linear{m.FC1, m.FC2} {
			l.QWeight().DequantizeRows(0, l.Out, l.Weight.W.Data)
			l.Weight.MarkChanged()
		}
		if _, err := Quantize(m, kernels.F32); err != nil {
			t.Fatal(err)
		}
		want := m.Infer(x)
		for i, v := range want.Data {
			if got.Data[i] != v {
				t.Fatalf("%v: y[%d] = %v quantized, %v float32 on the dequantized weights", dt, i, got.Data[i], v)
			}
		}
	}
}

// TestUseQuantized: weights taken out with QuantizedWeights and installed
// into a fresh copy of the layers with UseQuantized compute the same bits.
func TestUseQuantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	a := quantModel{NewLinear("a", 64, 24, true)}
	randFill(rng, 1, a[0].Weight.W, a[0].Bias.W)
	if _, err := Quantize(a, kernels.Int8); err != nil {
		t.Fatal(err)
	}
	b := quantModel{NewLinear("a", 64, 24, true)}
	copy(b[0].Bias.W.Data, a[0].Bias.W.Data)
	qs := QuantizedWeights(a)
	qs["a.weight"].DequantizeRows(0, 24, b[0].Weight.W.Data)
	if err := UseQuantized(b, qs, "test.safetensors"); err != nil {
		t.Fatal(err)
	}
	x := tensor.New(3, 64)
	randFill(rng, 1, x)
	ya, yb := a[0].Forward(x).Clone(), b[0].Forward(x)
	for i, v := range ya.Data {
		if yb.Data[i] != v {
			t.Fatalf("y[%d] = %v after UseQuantized, %v before", i, yb.Data[i], v)
		}
	}
	if !Stored(b[0].Weight) || b[0].Weight.W.Data != nil {
		t.Error("UseQuantized kept the float32 weight")
	}
	c := quantModel{NewLinear("a", 64, 24, true)}
	if err := UseQuantized(c, map[string]*kernels.QMatrix{"a.bias": qs["a.weight"]}, ""); err == nil {
		t.Error("a bias as a quantized weight: no error")
	}
	if d, src := StoredDtype(b); d != kernels.Int8 || src != "test.safetensors" {
		t.Errorf("StoredDtype = %v, %q", d, src)
	}
	_, err := Quantize(b, kernels.BF16)
	var se *StoredError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "test.safetensors") {
		t.Errorf("bf16 over int8 weights loaded from a file: %v", err)
	} else {
		t.Logf("bf16 over int8: %v", err)
	}
	if n, err := Quantize(b, kernels.Int8); err != nil || n != 1 {
		t.Errorf("int8 over int8 weights: %d, %v (want a no-op)", n, err)
	}
}

// TestQuantizeDrops: Quantize drops the float32 weights (shape kept, no
// data, no gradient) and the outputs are those of the kept copy; a
// second dtype or F32 is a *StoredError; the int8 groups of QuantOptions
// are honoured and refused where they do not divide In.
func TestQuantizeDrops(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	a := quantModel{NewLinear("a", 128, 16, true), NewLinear("b", 128, 8, false)}
	b := quantModel{NewLinear("a", 128, 16, true), NewLinear("b", 128, 8, false)}
	for i := range a {
		randFill(rng, 1, a[i].Weight.W)
		copy(b[i].Weight.W.Data, a[i].Weight.W.Data)
	}
	randFill(rng, 1, a[0].Bias.W)
	copy(b[0].Bias.W.Data, a[0].Bias.W.Data)
	if _, err := QuantizeWith(a, kernels.Int8, QuantOptions{Keep: true, Group: 32}); err != nil {
		t.Fatal(err)
	}
	if _, err := QuantizeWith(b, kernels.Int8, QuantOptions{Group: 32}); err != nil {
		t.Fatal(err)
	}
	if a[0].QWeight().Group != 32 || b[1].QWeight().Group != 32 {
		t.Errorf("groups %d, %d, want 32", a[0].QWeight().Group, b[1].QWeight().Group)
	}
	for _, l := range b {
		if !Stored(l.Weight) || l.Weight.W.Data != nil || l.Weight.G != nil || l.Weight.W.Shape[1] != 128 {
			t.Fatalf("%s: stored %v, W %v (%d values), G %v", l.Weight.Name, Stored(l.Weight), l.Weight.W.Shape, len(l.Weight.W.Data), l.Weight.G)
		}
	}
	if Stored(a[0].Weight) || len(a[0].Weight.W.Data) != 16*128 {
		t.Error("Keep dropped the float32 weight")
	}
	for _, rows := range []int{1, 4} {
		x := tensor.New(rows, 128)
		randFill(rng, 1, x)
		for i := range a {
			ya, yb := a[i].Forward(x).Clone(), b[i].Forward(x)
			for j, v := range ya.Data {
				if yb.Data[j] != v {
					t.Fatalf("%s rows %d: y[%d] = %v stored, %v kept", a[i].Weight.Name, rows, j, yb.Data[j], v)
				}
			}
		}
	}
	if got, want := WeightBytes(b), 24*(128/32)*(32+4); got != want {
		t.Errorf("WeightBytes = %d, want %d", got, want)
	}
	if got, want := QuantSavedBytes(b), 4*24*128-24*(128/32)*(32+4); got != want {
		t.Errorf("QuantSavedBytes = %d, want %d", got, want)
	}
	for _, dt := range []kernels.Dtype{kernels.F32, kernels.BF16} {
		var se *StoredError
		if _, err := Quantize(b, dt); !errors.As(err, &se) {
			t.Errorf("%v over stored int8: %v", dt, err)
		}
	}
	SetQuant(b, GetQuant(quantModel{NewLinear("a", 128, 16, true), NewLinear("b", 128, 8, false)}))
	if !Stored(b[0].Weight) {
		t.Error("SetQuant replaced a stored weight")
	}
	c := quantModel{NewLinear("c", 96, 8, false)}
	if _, err := QuantizeWith(c, kernels.Int8, QuantOptions{Group: 64}); err == nil || !strings.Contains(err.Error(), "c.weight") {
		t.Errorf("group 64 of 96 inputs: %v", err)
	}
	if _, err := QuantizeWith(c, kernels.Int8, QuantOptions{Group: -1}); err != nil || c[0].QWeight().Group != 96 {
		t.Errorf("group -1 (per channel): %v", err)
	}
}

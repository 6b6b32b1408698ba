package kernels

import "fmt"

// Activation selects the elementwise function a GemmEpilogue applies.
type Activation int

// Activations supported by GemmEpilogue.
const (
	ActNone Activation = iota
	// ActGELU is the exact GELU, x*Phi(x) = 0.5*x*(1+erf(x/sqrt 2)), as
	// PyTorch's nn.GELU() default (not the tanh approximation).
	ActGELU
)

// Epilogue is the work GemmEpilogue fuses into the GEMM's final pass over
// each tile of C while the tile is still in cache, so a Linear layer with
// bias, activation and residual costs one pass over memory:
//
//	out = act(op(A)*op(B) + Bias) + Residual
//	C   = out          (Accumulate false)
//	C  += out          (Accumulate true; the sum C + op(A)*op(B) is formed
//	                    first when Act is ActNone)
//
// With Accumulate and an activation, the activation applies to the product
// plus bias only, never to the old C (the gradient-accumulation case).
type Epilogue struct {
	// Bias has n entries, added to every row; nil for none.
	Bias []float32
	// Act is applied after the bias.
	Act Activation
	// Residual is an m x n matrix with row stride ldc, added after the
	// activation; nil for none. It must not overlap C, except that passing
	// C itself is allowed and means the same as Accumulate.
	Residual []float32
	// Accumulate adds the result to C instead of overwriting it.
	Accumulate bool
	// Tile, when set, is called last on every finished block of C, rows
	// [i0, i1) and columns [j0, j1) of the whole C (c and ldc as passed to
	// the GEMM), while the block is still in cache: layer-specific
	// elementwise work fused into the GEMM (nn.SLA's ReLUs in evaluation).
	// Blocks are disjoint and may be handed to different threads at once,
	// and how C is cut into them depends on the thread count, so Tile must
	// be elementwise (its result for an element may not depend on the
	// cut). Not with Accumulate.
	Tile func(c []float32, ldc, i0, i1, j0, j1 int)
}

// active reports whether the epilogue does anything after the product.
func (ep *Epilogue) active() bool {
	return ep.Bias != nil || ep.Act != ActNone || ep.Residual != nil || ep.Tile != nil
}

// checkEpilogue validates ep against an m x n C and turns a residual that
// is C itself into Accumulate.
func checkEpilogue(m, n int, c []float32, ldc int, ep *Epilogue) {
	if ep.Tile != nil && ep.Accumulate {
		panic("kernels.GemmEpilogue: a Tile function with Accumulate")
	}
	if ep.Bias != nil && len(ep.Bias) < n {
		panic(fmt.Sprintf("kernels.GemmEpilogue: bias has %d elements, C is %dx%d", len(ep.Bias), m, n))
	}
	if ep.Act != ActNone && ep.Act != ActGELU {
		panic(fmt.Sprintf("kernels.GemmEpilogue: unknown activation %d", ep.Act))
	}
	if ep.Residual != nil {
		if m > 0 && n > 0 && len(ep.Residual) < (m-1)*ldc+n {
			panic(fmt.Sprintf("kernels.GemmEpilogue: residual has %d elements, C is %dx%d (ld %d)", len(ep.Residual), m, n, ldc))
		}
		if len(c) > 0 && len(ep.Residual) > 0 && &ep.Residual[0] == &c[0] {
			ep.Residual = nil
			ep.Accumulate = true
		}
	}
}

// addInto sets C += T (+ R), T dense m x n, R with C's row stride.
func addInto(m, n int, c []float32, ldc int, t, r []float32) {
	ParallelFor(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			ti := t[i*n : i*n+n]
			if r != nil {
				ri := r[i*ldc : i*ldc+n]
				for j := range ci {
					ci[j] += ti[j] + ri[j]
				}
			} else {
				for j := range ci {
					ci[j] += ti[j]
				}
			}
		}
	})
}

// scaleC sets C = beta*C (beta 0 clears without reading).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	ParallelFor(m, max(1, 16384/max(n, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(ci)
			} else {
				for j := range ci {
					ci[j] *= beta
				}
			}
		}
	})
}

// applyEpilogue applies bias, activation and residual to C[i0:i1, j0:j1]
// (which already holds the product, plus the old C when accumulating).
func applyEpilogue(ep *Epilogue, c []float32, ldc, i0, i1, j0, j1 int) {
	applyEpilogueRest(ep, kernelEp{}, c, ldc, i0, i1, j0, j1)
}

// kernelEp says which parts of an epilogue the float32 kernels apply as
// they store a tile's last k slice (storeAccEp in kernels/gen): the same
// additions in the same order as applyEpilogue, without a second pass
// over the tile.
type kernelEp struct{ bias, res bool }

// kernelEpFor returns the parts of ep a kernel can take over: bias and
// residual when no activation follows; the bias alone before a GELU,
// which must see the product plus bias and nothing else (so not when the
// tile also accumulates the old C).
func kernelEpFor(ep *Epilogue, accum bool) kernelEp {
	switch ep.Act {
	case ActNone:
		return kernelEp{bias: ep.Bias != nil, res: ep.Residual != nil}
	case ActGELU:
		return kernelEp{bias: ep.Bias != nil && !accum}
	}
	return kernelEp{}
}

// applyEpilogueRest is applyEpilogue for the parts of ep the kernel has
// not already applied (done).
func applyEpilogueRest(ep *Epilogue, done kernelEp, c []float32, ldc, i0, i1, j0, j1 int) {
	if i1 <= i0 || j1 <= j0 {
		return
	}
	if ep.Tile != nil {
		defer ep.Tile(c, ldc, i0, i1, j0, j1)
	}
	var bias, res []float32
	if ep.Bias != nil && !done.bias {
		bias = ep.Bias[j0:j1]
	}
	if ep.Residual != nil && !done.res {
		res = ep.Residual[i0*ldc+j0:]
	}
	ct := c[i0*ldc+j0:]
	if ep.Act == ActNone {
		// Bias and residual in one vector pass over the tile (none when
		// the kernel added both).
		epilogueAdd(ct, ldc, i1-i0, j1-j0, bias, res, ldc)
		return
	}
	// Bias, then GELU row by row with the kernel a separate GELU pass runs,
	// then the residual: a fused Linear+GELU gives the same bits as Linear
	// followed by GELU, so prepacking (which fuses the MLP) never changes a
	// model's outputs.
	epilogueAdd(ct, ldc, i1-i0, j1-j0, bias, nil, ldc)
	geluTile(c, ldc, i0, i1, j0, j1)
	epilogueAdd(ct, ldc, i1-i0, j1-j0, nil, res, ldc)
}

// geluTile applies geluInPlace to C[i0:i1, j0:j1] with one kernel call
// (the same operations per element: the same bits).
func geluTile(c []float32, ldc, i0, i1, j0, j1 int) {
	if vec() {
		_ = c[(i1-1)*ldc+j1-1]
		geluRowsAVX512(&c[i0*ldc+j0], ldc, i1-i0, j1-j0)
		return
	}
	for i := i0; i < i1; i++ {
		geluInPlace(c[i*ldc+j0 : i*ldc+j1])
	}
}

// geluInPlace applies the exact-erf GELU of package-level GELU (serially:
// the epilogue already runs inside a parallel GEMM).
func geluInPlace(x []float32) {
	if len(x) > 0 {
		geluSerial(x, x)
	}
}

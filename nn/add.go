package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Residual helpers. A pre-norm block is x = x + f(norm(x)); the norms copy
// their input, so models may update the residual stream in place, and the
// residual's backward is the identity: the stream's gradient flows on
// unchanged and the branch's dx is added to it (AddInPlace again).

func checkSame(op string, a, b *tensor.Tensor) {
	if len(a.Data) != len(b.Data) {
		panic(fmt.Sprintf("nn.%s: shapes %v and %v differ in size", op, a.Shape, b.Shape))
	}
}

// AddInPlace adds src into dst (dst += src): the residual connection, and
// the accumulation of a branch's input gradient into the stream's.
func AddInPlace(dst, src *tensor.Tensor) {
	checkSame("AddInPlace", dst, src)
	kernels.AddTo(dst.Data, src.Data)
}

// AddScaledInPlace sets dst += s*src (a scaled residual branch).
func AddScaledInPlace(dst *tensor.Tensor, s float32, src *tensor.Tensor) {
	checkSame("AddScaledInPlace", dst, src)
	kernels.Axpy(dst.Data, s, src.Data)
}

// AddInto sets *out = a + b in a buffer grown with tensor.Ensure (shape of
// a) and returns it: the residual connection when the stream must not be
// overwritten.
func AddInto(out **tensor.Tensor, a, b *tensor.Tensor) *tensor.Tensor {
	checkSame("AddInto", a, b)
	y := tensor.Ensure(out, a.Shape...)
	kernels.Add(y.Data, a.Data, b.Data)
	return y
}

// ensureDims is tensor.Ensure for literal dimensions, passing the reusable
// slice *shp as the shape: tensor.Ensure's variadic shape escapes
// (tensor.Numel formats it in a panic message), so a literal
// tensor.Ensure(&t, rows, c) would allocate on every call.
func ensureDims(t **tensor.Tensor, shp *[]int, dims ...int) *tensor.Tensor {
	*shp = append((*shp)[:0], dims...)
	return tensor.Ensure(t, (*shp)...)
}

// keepInput returns what a norm's Backward reads as its input: in training
// a copy of x in *buf (models may update the residual stream in place
// before Backward), in eval or when the caller promises x stays unchanged
// (noCopy) x itself (inference does not differentiate).
func keepInput(buf **tensor.Tensor, x *tensor.Tensor, train, noCopy bool) *tensor.Tensor {
	if !train || noCopy {
		return x
	}
	c := tensor.Ensure(buf, x.Shape...)
	copy(c.Data, x.Data)
	return c
}

// Package tensor holds slab's float32 tensor: a shape and a contiguous,
// row-major slice. It is deliberately tiny: no strides, no dtype, no device.
// Views share storage; Ensure lets a layer reuse its output buffer across
// calls so that a steady-state forward or training step allocates nothing.
package tensor

import (
	"fmt"
	"strings"
)

// Tensor is a dense row-major float32 array.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	n := Numel(shape)
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
}

// FromData wraps data (not copied) in a tensor of the given shape.
func FromData(data []float32, shape ...int) (*Tensor, error) {
	if n := Numel(shape); n != len(data) {
		return nil, fmt.Errorf("tensor: %d values do not fill shape %v (%d)", len(data), shape, n)
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// Numel is the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			// Format a copy: handing shape itself to fmt would make every
			// caller's variadic shape escape to the heap (one allocation per
			// Ensure on the hot path).
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", append([]int(nil), shape...)))
		}
		n *= d
	}
	return n
}

// Size is the number of elements.
func (t *Tensor) Size() int { return len(t.Data) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Rows is the product of all but the last dimension: the number of rows of
// the tensor seen as a matrix [Rows, Cols].
func (t *Tensor) Rows() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return len(t.Data) / t.Shape[len(t.Shape)-1]
}

// Cols is the last dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// View returns a tensor sharing t's storage with a new shape of equal size.
func (t *Tensor) View(shape ...int) *Tensor {
	if Numel(shape) != len(t.Data) {
		panic(fmt.Sprintf("tensor: cannot view %v as %v", t.Shape, shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: t.Data}
}

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// CopyFrom copies src's values into t; shapes must have the same size.
func (t *Tensor) CopyFrom(src *Tensor) {
	if len(src.Data) != len(t.Data) {
		panic(fmt.Sprintf("tensor: copy %v into %v", src.Shape, t.Shape))
	}
	copy(t.Data, src.Data)
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b *Tensor) bool { return ShapeEq(a.Shape, b.Shape) }

// ShapeEq reports whether two shapes are identical.
func ShapeEq(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Ensure makes *t a tensor of the given shape, reusing its storage when the
// capacity suffices, and returns it. Contents are unspecified (not zeroed)
// when the storage is reused. This is slab's buffer arena: every layer keeps
// its outputs and scratch in tensors grown by Ensure, so a steady-state pass
// never allocates and never hands memory back to the OS.
func Ensure(t **Tensor, shape ...int) *Tensor {
	n := Numel(shape)
	if *t == nil {
		*t = &Tensor{}
	}
	x := *t
	if cap(x.Data) < n {
		x.Data = make([]float32, n)
	} else {
		x.Data = x.Data[:n]
	}
	if len(x.Shape) != len(shape) {
		x.Shape = make([]int, len(shape))
	}
	copy(x.Shape, shape)
	return x
}

// EnsureZero is Ensure followed by zeroing.
func EnsureZero(t **Tensor, shape ...int) *Tensor {
	x := Ensure(t, shape...)
	clear(x.Data)
	return x
}

// String describes the shape, not the values.
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

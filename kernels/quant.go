package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Low-precision weights. A decoder's GEMVs read every weight once per
// token, so their speed is the weight bytes over the memory read rate:
// bf16 halves the bytes, int8 quarters them (plus a scale per group).
// Weights are stored low, activations and sums stay float32:
//
//   - bf16: the top half of the float32, rounded to nearest even. The
//     GEMV widens each weight (a zero-extension and a shift) and multiplies
//     by the float32 x; GemvBF16Dot instead rounds x to bf16 too and uses
//     VDPBF16PS (twice the products per instruction, ~3 significant digits
//     of x).
//   - int8: symmetric, per output row and per group of Group consecutive
//     weights, w ≈ scale * q, q in [-127, 127], scale = max|w| / 127. Each
//     row is stored as k/Group blocks of Group int8 followed by the
//     block's float32 scale (little endian), as llama.cpp's q8_0 stores
//     blocks, so the kernel reads each row as one stream.
//
// GEMMs (several rows) run on the VDPBF16PS (bf16, gemm_bf16.go) or
// VPDPBUSD (int8, gemm_int8.go) kernels where the CPU has them, on
// weights packed once per matrix, else dequantize a strip of W at a time
// into float32 and run the float32 GEMM on it (gemm_quant.go); GEMVs read
// the low-precision weights directly (gemv_quant.go).

// Dtype names how a weight matrix is stored.
type Dtype uint8

// The weight dtypes.
const (
	F32 Dtype = iota
	BF16
	Int8
)

// String returns "f32", "bf16" or "int8".
func (d Dtype) String() string {
	switch d {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case Int8:
		return "int8"
	}
	return fmt.Sprintf("Dtype(%d)", uint8(d))
}

// ParseDtype reads "f32" (or "float32"), "bf16" or "int8".
func ParseDtype(s string) (Dtype, error) {
	switch s {
	case "f32", "float32", "fp32":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "int8", "i8", "q8":
		return Int8, nil
	}
	return F32, fmt.Errorf("unknown dtype %q (want f32, bf16 or int8)", s)
}

// QMatrix is a weight matrix of N rows (output channels) by K stored in
// bf16 or int8, the W [out, in] of y = x W^T.
type QMatrix struct {
	Dtype Dtype
	N, K  int
	// BF16 holds N*K bf16 values, row-major (Dtype BF16).
	BF16 []uint16
	// Q holds each int8 row as K/Group blocks of Group int8 weights
	// followed by the block's float32 scale; RowBytes apart (Dtype Int8).
	Q     []byte
	Group int
	// bf16p caches the bf16 GEMM's packing of BF16 (gemm_bf16.go).
	bf16p bf16Cache
}

// RowBytes is the storage of one int8 row: K/Group blocks of Group+4
// bytes.
func (q *QMatrix) RowBytes() int { return q.K / q.Group * (q.Group + 4) }

// Bytes is the size of the stored weights (what one GEMV reads).
func (q *QMatrix) Bytes() int {
	if q.Dtype == BF16 {
		return 2 * len(q.BF16)
	}
	return len(q.Q)
}

// ToBF16 rounds f to the nearest bf16 (ties to even); NaN stays NaN.
func ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// FromBF16 widens a bf16 to float32 (exact).
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// QuantizeBF16 returns w [n, k] (row-major, row stride k) rounded to bf16.
func QuantizeBF16(w []float32, n, k int) (*QMatrix, error) {
	if n < 0 || k < 0 || len(w) < n*k {
		return nil, fmt.Errorf("kernels.QuantizeBF16: %d values for a %dx%d matrix", len(w), n, k)
	}
	q := &QMatrix{Dtype: BF16, N: n, K: k, BF16: weightU16(n * k)}
	ParallelFor(n*k, 1<<16, func(lo, hi int) {
		for i, v := range w[lo:hi] {
			q.BF16[lo+i] = ToBF16(v)
		}
	})
	return q, nil
}

// Int8Group picks the group size for int8 weights of rows of k: 64 when it
// divides k, else 32, else 128, else the whole row (k a multiple of 16),
// else 0 (no int8 layout fits; QuantizeInt8 with group k still works,
// through the Go kernel).
func Int8Group(k int) int {
	for _, g := range []int{64, 32, 128} {
		if k%g == 0 {
			return g
		}
	}
	if k%16 == 0 {
		return k
	}
	return 0
}

// QuantizeInt8 returns w [n, k] quantized to int8 with one scale per group
// of group consecutive weights of a row; group must divide k.
func QuantizeInt8(w []float32, n, k, group int) (*QMatrix, error) {
	if n < 0 || k < 0 || len(w) < n*k {
		return nil, fmt.Errorf("kernels.QuantizeInt8: %d values for a %dx%d matrix", len(w), n, k)
	}
	if group <= 0 || k%group != 0 {
		return nil, fmt.Errorf("kernels.QuantizeInt8: group %d does not divide the row length %d", group, k)
	}
	q := &QMatrix{Dtype: Int8, N: n, K: k, Group: group}
	rb := q.RowBytes()
	q.Q = weightBytes(n * rb)
	ParallelFor(n, max(1, (1<<16)/max(k, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			q.quantizeRow(i, w[i*k:(i+1)*k])
		}
	})
	return q, nil
}

// quantizeRow stores row i of the int8 matrix from w (K floats).
func (q *QMatrix) quantizeRow(i int, w []float32) {
	k, group, rb := q.K, q.Group, q.RowBytes()
	row := q.Q[i*rb : (i+1)*rb]
	for g := 0; g < k/group; g++ {
		src := w[g*group : (g+1)*group]
		blk := row[g*(group+4) : (g+1)*(group+4)]
		var amax float32
		for _, v := range src {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		scale := amax / 127
		inv := float32(0)
		if scale > 0 {
			inv = 1 / scale
		}
		for j, v := range src {
			r := math.RoundToEven(float64(v * inv))
			blk[j] = byte(int8(max(-127, min(127, r))))
		}
		binary.LittleEndian.PutUint32(blk[group:], math.Float32bits(scale))
	}
}

// Quantize returns w [n, k] stored as dtype (BF16 or Int8 with the group
// of Int8Group).
func Quantize(dtype Dtype, w []float32, n, k int) (*QMatrix, error) {
	switch dtype {
	case BF16:
		return QuantizeBF16(w, n, k)
	case Int8:
		g := Int8Group(k)
		if g == 0 {
			g = k
		}
		return QuantizeInt8(w, n, k, g)
	}
	return nil, fmt.Errorf("kernels.Quantize: cannot store weights as %v", dtype)
}

// scaleAt returns the scale of block g of int8 row r.
func (q *QMatrix) scaleAt(r, g int) float32 {
	off := r*q.RowBytes() + g*(q.Group+4) + q.Group
	return math.Float32frombits(binary.LittleEndian.Uint32(q.Q[off:]))
}

// DequantizeRows writes rows [r0, r1) of the stored matrix as float32 into
// dst (row stride K).
func (q *QMatrix) DequantizeRows(r0, r1 int, dst []float32) {
	k := q.K
	dst = dst[:(r1-r0)*k]
	if q.Dtype == BF16 {
		dequantBF16(q.BF16[r0*k:r1*k], dst)
		return
	}
	rb, g := q.RowBytes(), q.Group
	for r := r0; r < r1; r++ {
		row := q.Q[r*rb : (r+1)*rb]
		d := dst[(r-r0)*k : (r-r0+1)*k]
		for b := 0; b < k/g; b++ {
			s := q.scaleAt(r, b)
			blk := row[b*(g+4) : b*(g+4)+g]
			db := d[b*g : (b+1)*g]
			for j, v := range blk {
				db[j] = s * float32(int8(v))
			}
		}
	}
}

// dequantBF16 widens src into dst.
func dequantBF16(src []uint16, dst []float32) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// Int8Parts returns an int8 matrix's codes [N*K] (row-major) and scales
// [N * K/Group] (row-major by group): its checkpoint form.
func (q *QMatrix) Int8Parts() (codes []int8, scales []float32) {
	g, rb := q.Group, q.RowBytes()
	codes = make([]int8, q.N*q.K)
	scales = make([]float32, q.N*(q.K/g))
	for r := range q.N {
		for b := range q.K / g {
			blk := q.Q[r*rb+b*(g+4):]
			for j := range g {
				codes[r*q.K+b*g+j] = int8(blk[j])
			}
			scales[r*(q.K/g)+b] = q.scaleAt(r, b)
		}
	}
	return codes, scales
}

// NewBF16 builds a bf16 matrix of n rows of k from its values [n*k] (bit
// patterns, row-major), copied into the storage QuantizeBF16 uses (huge
// pages where the system allows), so a matrix read from a file decodes as
// fast as one quantized in memory. vals nil gives a zero matrix for the
// caller to fill (q.BF16), without a second copy of the values.
func NewBF16(n, k int, vals []uint16) (*QMatrix, error) {
	if n < 0 || k < 0 || vals != nil && len(vals) != n*k {
		return nil, fmt.Errorf("kernels.NewBF16: %d values for a %dx%d matrix", len(vals), n, k)
	}
	q := &QMatrix{Dtype: BF16, N: n, K: k, BF16: weightU16(n * k)}
	copy(q.BF16, vals)
	return q, nil
}

// NewInt8 builds an int8 matrix of n rows of k from codes [n*k] and
// scales [n * k/group] as Int8Parts returns them.
func NewInt8(n, k, group int, codes []int8, scales []float32) (*QMatrix, error) {
	if n < 0 || k < 0 || group <= 0 || k%group != 0 {
		return nil, fmt.Errorf("kernels.NewInt8: group %d does not divide rows of %d", group, k)
	}
	if len(codes) != n*k || len(scales) != n*(k/group) {
		return nil, fmt.Errorf("kernels.NewInt8: %d codes and %d scales for %dx%d in groups of %d (want %d and %d)",
			len(codes), len(scales), n, k, group, n*k, n*(k/group))
	}
	q := &QMatrix{Dtype: Int8, N: n, K: k, Group: group}
	rb := q.RowBytes()
	q.Q = weightBytes(n * rb)
	for r := range n {
		for b := range k / group {
			blk := q.Q[r*rb+b*(group+4):]
			for j := range group {
				blk[j] = byte(codes[r*k+b*group+j])
			}
			binary.LittleEndian.PutUint32(blk[group:], math.Float32bits(scales[r*(k/group)+b]))
		}
	}
	return q, nil
}

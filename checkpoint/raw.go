package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"unsafe"
)

// Low-precision entries. A quantized slab checkpoint stores Linear
// weights as BF16 or as I8 codes with F32 scales; widening them to float32
// (or int64) on read would take 2x (or 8x) their size in memory for a
// moment and defeat the point. ReadRaw keeps such entries as their stored
// bytes, and BF16s / Int8s hand them out in the form the kernels keep.

// ReadRaw is Read, except that BF16 and I8 entries keep their stored
// bytes in Entry.Raw (views of the one buffer holding the file) instead of
// being widened to float32 or int64; Entry.Tensor and Int64s still decode
// them on demand.
func ReadRaw(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return readBytes(b, path, true, true)
}

// rawOnly reports whether e's values are only in Raw.
func (e *Entry) rawOnly() bool { return e.Raw != nil && e.F32 == nil && e.I64 == nil }

// decodeRaw returns e with Raw widened into F32 or I64 (e is unchanged).
func (e *Entry) decodeRaw() *Entry {
	d := &Entry{DType: e.DType, Shape: e.Shape}
	info := dtypes[e.DType]
	if info.size == 0 {
		return d
	}
	n := len(e.Raw) / info.size
	if info.float {
		d.F32 = make([]float32, n)
		decodeFloats(d.F32, e.Raw, e.DType)
	} else {
		d.I64 = make([]int64, n)
		decodeInts(d.I64, e.Raw, e.DType)
	}
	return d
}

// NewBF16Entry returns an entry writing vals (bf16 bit patterns) as BF16
// with the given shape, without widening them.
func NewBF16Entry(shape []int, vals []uint16) *Entry {
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	return &Entry{DType: "BF16", Shape: append([]int(nil), shape...), Raw: raw}
}

// NewInt8Entry returns an entry writing vals as I8 with the given shape.
func NewInt8Entry(shape []int, vals []int8) *Entry {
	raw := make([]byte, len(vals))
	for i, v := range vals {
		raw[i] = byte(v)
	}
	return &Entry{DType: "I8", Shape: append([]int(nil), shape...), Raw: raw}
}

// BF16s returns a BF16 entry's values as bf16 bit patterns: from Raw
// without widening (ReadRaw), or rounded from F32 (Read widens BF16
// exactly, so that gives the stored bits back). name labels errors.
func (e *Entry) BF16s(name string) ([]uint16, error) {
	out := make([]uint16, e.Numel())
	if err := e.BF16sInto(name, out); err != nil {
		return nil, err
	}
	return out, nil
}

// BF16sInto is BF16s into dst, which must hold exactly the entry's values:
// a loader decodes straight into the matrix the model keeps.
func (e *Entry) BF16sInto(name string, out []uint16) error {
	if e.DType != "BF16" {
		return fmt.Errorf("checkpoint: tensor %q is %s, not BF16", name, e.DType)
	}
	if len(out) != e.Numel() {
		return fmt.Errorf("checkpoint: tensor %q: %d values into room for %d", name, e.Numel(), len(out))
	}
	switch {
	case e.Raw != nil && len(e.Raw) == 2*len(out):
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(e.Raw[2*i:])
		}
	case len(e.F32) == len(out):
		for i, v := range e.F32 {
			out[i] = Float32ToBFloat16(v)
		}
	default:
		return fmt.Errorf("checkpoint: tensor %q: shape %v but no BF16 values to match", name, e.Shape)
	}
	return nil
}

// Int8s returns an I8 entry's values: a view of Raw (ReadRaw: no copy) or
// converted from I64 (Read). name labels errors.
func (e *Entry) Int8s(name string) ([]int8, error) {
	if e.DType != "I8" {
		return nil, fmt.Errorf("checkpoint: tensor %q is %s, not I8", name, e.DType)
	}
	n := e.Numel()
	switch {
	case e.Raw != nil && len(e.Raw) == n:
		if n == 0 {
			return []int8{}, nil
		}
		return unsafe.Slice((*int8)(unsafe.Pointer(&e.Raw[0])), n), nil
	case len(e.I64) == n:
		out := make([]int8, n)
		for i, v := range e.I64 {
			if v < -128 || v > 127 {
				return nil, fmt.Errorf("checkpoint: tensor %q: value %d at %d is not an int8", name, v, i)
			}
			out[i] = int8(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("checkpoint: tensor %q: shape %v but no I8 values to match", name, e.Shape)
}

// ReadHeader reads only the header of a safetensors file: its metadata
// and each tensor's dtype and shape, with no values (F32, I64 and Raw are
// nil, and nothing is checked against the data, which Read does). It lets
// a loader prepare for a file before holding its bytes in memory.
func ReadHeader(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fh.Close()
	var lenb [8]byte
	if _, err := io.ReadFull(fh, lenb[:]); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: too short for a safetensors file", path)
	}
	n := binary.LittleEndian.Uint64(lenb[:])
	if n > maxHeader {
		return nil, fmt.Errorf("checkpoint: %s: header length %d is absurd (limit %d); not a safetensors file?", path, n, maxHeader)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(fh, hdr); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: header: %v", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimRight(hdr, " "), &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("checkpoint: %s: bad JSON header", path)
	}
	f := NewFile()
	for k, msg := range raw {
		if k == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("checkpoint: %s: __metadata__ is not a string map: %v", path, err)
			}
			if f.Metadata == nil {
				f.Metadata = map[string]string{}
			}
			continue
		}
		var h headerEntry
		if err := json.Unmarshal(msg, &h); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: bad header entry: %v", path, k, err)
		}
		e := &Entry{DType: h.DType, Shape: make([]int, len(h.Shape))}
		for i, d := range h.Shape {
			e.Shape[i] = int(d)
		}
		f.Tensors[k] = e
	}
	return f, nil
}

package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unsafe"

	"github.com/slabml/slab/tensor"
)

// File is a named set of tensors with free-form string metadata. It is the
// in-memory form of a safetensors file and the result of reading a .pth.
type File struct {
	Tensors map[string]*Entry
	// Metadata is safetensors' "__metadata__" map; slab stores JSON
	// documents here (model config, optimizer state, training step).
	Metadata map[string]string
}

// Entry is one stored array. Exactly one of F32 and I64 holds its values:
// F32 for floating-point dtypes (widened or narrowed to float32), I64 for
// integer dtypes.
type Entry struct {
	// DType is the dtype as stored (read) or to store (write): "F32",
	// "F16", "BF16", "F64" (float data) or "I64", "I32", "I16", "I8", "U8",
	// "BOOL" (integer data). An empty DType on write means F32 when F32 is
	// set and I64 otherwise.
	DType string
	Shape []int
	F32   []float32
	I64   []int64
	// Raw holds the stored little-endian bytes of a BF16 or I8 entry read
	// by ReadRaw, whose F32 and I64 are then nil (Tensor and Int64s
	// decode it); on write, an entry with only Raw set writes those bytes
	// as DType (see NewBF16Entry, NewInt8Entry).
	Raw []byte

	// view is the bytes of the file's buffer F32 or Raw views (Read,
	// ReadRaw), for Release.
	view []byte
}

// Release drops e's values and, when they are a view of the buffer Read
// or ReadRaw filled with the file, gives their pages back to the system:
// a loader that releases each weight once it is copied into the model
// peaks near the larger of the file and the model, not their sum. The
// entry keeps its dtype and shape; its values are gone (Tensor reports
// it). Entries holding values of their own only drop them.
func (e *Entry) Release() {
	if e.view != nil {
		releaseBytes(e.view)
	}
	e.view, e.F32, e.I64, e.Raw = nil, nil, nil, nil
}

// NewFile returns an empty File ready for Set calls.
func NewFile() *File {
	return &File{Tensors: map[string]*Entry{}, Metadata: map[string]string{}}
}

// Set stores a copy of t under name as F32.
func (f *File) Set(name string, t *tensor.Tensor) {
	f.Tensors[name] = &Entry{DType: "F32", Shape: append([]int{}, t.Shape...), F32: append([]float32(nil), t.Data...)}
}

// SetInt64 stores a copy of vals under name as I64 with the given shape
// (an empty shape is a 0-d scalar).
func (f *File) SetInt64(name string, vals []int64, shape ...int) {
	f.Tensors[name] = &Entry{DType: "I64", Shape: append([]int{}, shape...), I64: append([]int64(nil), vals...)}
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tensor returns the float entry name as a tensor sharing the entry's
// storage. Integer entries are converted (copied) to float32, since a model
// may keep a counter such as num_batches_tracked in a float buffer.
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	e, ok := f.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint: no tensor %q", name)
	}
	return e.Tensor(name)
}

// Tensor returns the entry as a float32 tensor; name is only used in
// errors.
func (e *Entry) Tensor(name string) (*tensor.Tensor, error) {
	if e.rawOnly() {
		return e.decodeRaw().Tensor(name)
	}
	shape := append([]int{}, e.Shape...)
	if e.F32 != nil || e.I64 == nil {
		t, err := tensor.FromData(e.F32, shape...)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: tensor %q: %w", name, err)
		}
		return t, nil
	}
	d := make([]float32, len(e.I64))
	for i, v := range e.I64 {
		d[i] = float32(v)
	}
	t, err := tensor.FromData(d, shape...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: tensor %q: %w", name, err)
	}
	return t, nil
}

// Int64s returns the integer values of the entry; float entries are
// converted with truncation toward zero.
func (e *Entry) Int64s() []int64 {
	if e.rawOnly() {
		return e.decodeRaw().Int64s()
	}
	if e.I64 != nil {
		return e.I64
	}
	out := make([]int64, len(e.F32))
	for i, v := range e.F32 {
		out[i] = int64(v)
	}
	return out
}

// Numel is the number of elements the shape holds.
func (e *Entry) Numel() int {
	n := 1
	for _, d := range e.Shape {
		n *= d
	}
	return n
}

type dtypeInfo struct {
	size  int
	float bool
}

var dtypes = map[string]dtypeInfo{
	"F64": {8, true}, "F32": {4, true}, "F16": {2, true}, "BF16": {2, true},
	"I64": {8, false}, "I32": {4, false}, "I16": {2, false}, "I8": {1, false},
	"U8": {1, false}, "BOOL": {1, false},
}

// maxHeader bounds the JSON header: the safetensors reference
// implementation refuses headers above 100 MB, and a larger length field is
// a corrupt file, not a request for a huge allocation.
const maxHeader = 100 << 20

// Read loads a safetensors file. Its F32 entries may view one buffer
// holding the whole file (each with its own length and capacity, so they
// stay independent): keeping any entry keeps that buffer alive.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The buffer is private to this call, so F32 entries may view it
	// directly instead of being copied: loading then needs the file's size
	// in memory once, not twice.
	return readBytes(b, path, true, false)
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadBytes decodes a safetensors image held in memory; name (usually the
// path) labels errors. Float entries are converted to float32 and integer
// entries to int64, so the result does not alias b.
func ReadBytes(b []byte, name string) (*File, error) { return readBytes(b, name, false, false) }

// readBytes is ReadBytes; alias lets little-endian F32 entries view b, raw
// keeps BF16 and I8 entries as views of b in Entry.Raw (ReadRaw).
func readBytes(b []byte, name string, alias, keepRaw bool) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint: %s: %s", name, fmt.Sprintf(format, args...))
	}
	if len(b) < 8 {
		return nil, fail("too short for a safetensors file (%d bytes)", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeader {
		return nil, fail("header length %d is absurd (limit %d); not a safetensors file?", n, maxHeader)
	}
	if n > uint64(len(b)-8) {
		return nil, fail("header length %d exceeds the file's %d remaining bytes (truncated?)", n, len(b)-8)
	}
	hdr := b[8 : 8+n]
	data := b[8+n:]
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fail("bad JSON header: %v", err)
	}
	if raw == nil {
		return nil, fail("header is not a JSON object")
	}
	// The header may be padded with spaces to align the data; anything else
	// after the object is corruption.
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimRight(rest, " ")) != 0 {
		return nil, fail("trailing bytes after the JSON header")
	}
	f := &File{Tensors: make(map[string]*Entry, len(raw)), Metadata: map[string]string{}}
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &f.Metadata); err != nil {
			return nil, fail("__metadata__ is not a string map: %v", err)
		}
		if f.Metadata == nil {
			f.Metadata = map[string]string{}
		}
		delete(raw, "__metadata__")
	}
	type span struct {
		begin, end int64
		key        string
	}
	spans := make([]span, 0, len(raw))
	for key, msg := range raw {
		var h headerEntry
		if err := json.Unmarshal(msg, &h); err != nil {
			return nil, fail("tensor %q: bad header entry: %v", key, err)
		}
		e, err := decodeEntry(&h, data, alias, keepRaw)
		if err != nil {
			return nil, fail("tensor %q: %v", key, err)
		}
		f.Tensors[key] = e
		if h.DataOffsets[1] > h.DataOffsets[0] {
			spans = append(spans, span{h.DataOffsets[0], h.DataOffsets[1], key})
		}
	}
	// Overlapping tensors are corruption (the reference reader refuses
	// them too), and with aliasing they would share memory.
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fail("tensors %q and %q overlap in the data section", spans[i-1].key, spans[i].key)
		}
	}
	return f, nil
}

func decodeEntry(h *headerEntry, data []byte, alias, raw bool) (*Entry, error) {
	info, ok := dtypes[h.DType]
	if !ok {
		return nil, fmt.Errorf("unknown dtype %q", h.DType)
	}
	if len(h.DataOffsets) != 2 {
		return nil, fmt.Errorf("data_offsets has %d values, want 2", len(h.DataOffsets))
	}
	begin, end := h.DataOffsets[0], h.DataOffsets[1]
	if begin < 0 || end < begin || end > int64(len(data)) {
		return nil, fmt.Errorf("data_offsets [%d,%d] outside the %d data bytes", begin, end, len(data))
	}
	shape := make([]int, len(h.Shape))
	zero := false
	for i, d := range h.Shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", h.Shape)
		}
		zero = zero || d == 0
		shape[i] = int(d)
	}
	numel := int64(1)
	if zero {
		numel = 0
	} else {
		// Dividing instead of multiplying keeps an absurd shape from
		// overflowing the product into something that looks valid.
		for _, d := range h.Shape {
			if numel > int64(len(data))/d {
				return nil, fmt.Errorf("shape %v does not fit %d data bytes", h.Shape, len(data))
			}
			numel *= d
		}
	}
	if numel*int64(info.size) != end-begin {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets [%d,%d] span %d",
			h.Shape, h.DType, numel*int64(info.size), begin, end, end-begin)
	}
	src := data[begin:end]
	e := &Entry{DType: h.DType, Shape: shape}
	switch {
	case raw && (h.DType == "BF16" || h.DType == "I8"):
		e.Raw = src[:len(src):len(src)]
		e.view = e.Raw
	case alias && littleEndian && h.DType == "F32" && numel > 0 && uintptr(unsafe.Pointer(&src[0]))%4 == 0:
		e.F32 = unsafe.Slice((*float32)(unsafe.Pointer(&src[0])), numel)
		e.view = src
	case info.float:
		e.F32 = make([]float32, numel)
		decodeFloats(e.F32, src, h.DType)
	default:
		e.I64 = make([]int64, numel)
		decodeInts(e.I64, src, h.DType)
	}
	return e, nil
}

func decodeFloats(dst []float32, src []byte, dtype string) {
	le := binary.LittleEndian
	switch dtype {
	case "F32":
		if littleEndian {
			// The stored bytes are already this machine's float32 layout.
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*len(dst)), src)
			return
		}
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case "F64":
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case "F16":
		for i := range dst {
			dst[i] = HalfToFloat32(le.Uint16(src[2*i:]))
		}
	case "BF16":
		for i := range dst {
			dst[i] = BFloat16ToFloat32(le.Uint16(src[2*i:]))
		}
	}
}

func decodeInts(dst []int64, src []byte, dtype string) {
	le := binary.LittleEndian
	switch dtype {
	case "I64":
		if littleEndian {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 8*len(dst)), src)
			return
		}
		for i := range dst {
			dst[i] = int64(le.Uint64(src[8*i:]))
		}
	case "I32":
		for i := range dst {
			dst[i] = int64(int32(le.Uint32(src[4*i:])))
		}
	case "I16":
		for i := range dst {
			dst[i] = int64(int16(le.Uint16(src[2*i:])))
		}
	case "I8":
		for i := range dst {
			dst[i] = int64(int8(src[i]))
		}
	case "U8", "BOOL":
		for i := range dst {
			dst[i] = int64(src[i])
		}
	}
}

// Marshal encodes f as a safetensors image. Tensors are laid out in sorted
// name order, the header is padded with spaces to a multiple of 8 bytes (so
// every tensor starts 8-aligned, as the reference writer does), and the
// metadata map is emitted with sorted keys: equal Files give equal bytes.
func Marshal(f *File) ([]byte, error) {
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode writes f as a safetensors stream to w (see Marshal).
func Encode(w io.Writer, f *File) error {
	names := f.Names()
	type planned struct {
		name  string
		e     *Entry
		dtype string
		size  int64
	}
	plan := make([]planned, 0, len(names))
	for _, name := range names {
		if name == "__metadata__" {
			return errors.New("checkpoint: \"__metadata__\" is reserved and cannot name a tensor")
		}
		e := f.Tensors[name]
		if e == nil {
			return fmt.Errorf("checkpoint: tensor %q is nil", name)
		}
		dt, err := e.writeDType()
		if err != nil {
			return fmt.Errorf("checkpoint: tensor %q: %w", name, err)
		}
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("checkpoint: tensor %q: negative dimension in shape %v", name, e.Shape)
			}
		}
		have := len(e.F32)
		if !dtypes[dt].float {
			have = len(e.I64)
		}
		if e.rawOnly() {
			have = len(e.Raw) / dtypes[dt].size
		}
		if n := e.Numel(); n != have {
			return fmt.Errorf("checkpoint: tensor %q: shape %v holds %d values, entry has %d", name, e.Shape, n, have)
		}
		plan = append(plan, planned{name, e, dt, int64(have) * int64(dtypes[dt].size)})
	}

	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	comma := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if len(f.Metadata) > 0 {
		m, err := json.Marshal(f.Metadata) // encoding/json sorts map keys
		if err != nil {
			return fmt.Errorf("checkpoint: metadata: %w", err)
		}
		comma()
		h.WriteString(`"__metadata__":`)
		h.Write(m)
	}
	var off int64
	for _, p := range plan {
		comma()
		k, _ := json.Marshal(p.name)
		h.Write(k)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, p.dtype)
		for i, d := range p.e.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprint(&h, d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+p.size)
		off += p.size
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(h.Len()))
	if _, err := w.Write(lenb[:]); err != nil {
		return err
	}
	if _, err := w.Write(h.Bytes()); err != nil {
		return err
	}
	// Encode in chunks so a large tensor never needs a second full-size copy.
	chunk := make([]byte, 0, 1<<16)
	for _, p := range plan {
		if err := encodeEntry(w, p.e, p.dtype, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (e *Entry) writeDType() (string, error) {
	dt := e.DType
	if dt == "" && e.rawOnly() {
		return "", errors.New("raw bytes but no dtype")
	}
	if dt == "" {
		if e.F32 != nil || e.I64 == nil {
			dt = "F32"
		} else {
			dt = "I64"
		}
	}
	info, ok := dtypes[dt]
	if !ok {
		return "", fmt.Errorf("unknown dtype %q", dt)
	}
	if e.rawOnly() {
		if len(e.Raw)%info.size != 0 {
			return "", fmt.Errorf("%d raw bytes are not a whole number of %s values", len(e.Raw), dt)
		}
		return dt, nil
	}
	if info.float && e.F32 == nil && e.I64 != nil {
		return "", fmt.Errorf("dtype %s but only integer values", dt)
	}
	if !info.float && e.I64 == nil && e.F32 != nil {
		return "", fmt.Errorf("dtype %s but only float values", dt)
	}
	return dt, nil
}

// littleEndian reports whether float32/int64 memory already has the file's
// byte order, so F32 and I64 data can be copied instead of converted.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func encodeEntry(w io.Writer, e *Entry, dtype string, chunk []byte) error {
	if e.rawOnly() {
		_, err := w.Write(e.Raw)
		return err
	}
	if littleEndian && dtype == "F32" && len(e.F32) > 0 {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(e.F32))), 4*len(e.F32)))
		return err
	}
	if littleEndian && dtype == "I64" && len(e.I64) > 0 {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(e.I64))), 8*len(e.I64)))
		return err
	}
	size := dtypes[dtype].size
	n := len(e.F32)
	if !dtypes[dtype].float {
		n = len(e.I64)
	}
	per := cap(chunk) / size
	le := binary.LittleEndian
	for start := 0; start < n; start += per {
		stop := min(start+per, n)
		b := chunk[:(stop-start)*size]
		for i := start; i < stop; i++ {
			o := b[(i-start)*size:]
			switch dtype {
			case "F32":
				le.PutUint32(o, math.Float32bits(e.F32[i]))
			case "F64":
				le.PutUint64(o, math.Float64bits(float64(e.F32[i])))
			case "F16":
				le.PutUint16(o, Float32ToHalf(e.F32[i]))
			case "BF16":
				le.PutUint16(o, Float32ToBFloat16(e.F32[i]))
			case "I64":
				le.PutUint64(o, uint64(e.I64[i]))
			case "I32":
				le.PutUint32(o, uint32(e.I64[i]))
			case "I16":
				le.PutUint16(o, uint16(e.I64[i]))
			case "I8", "U8", "BOOL":
				o[0] = byte(e.I64[i])
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Write stores f at path atomically: the bytes go to a temporary file in
// the same directory, which is fsynced and then renamed over path, and the
// directory is fsynced so the rename itself is durable. On any error the
// temporary file is removed and an existing file at path is untouched.
func Write(path string, f *File) error {
	if err := WriteAtomic(path, func(w io.Writer) error { return Encode(w, f) }, nil); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf / NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant * 2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// Float32ToHalf converts to binary16 with round-to-nearest-even, overflow
// to infinity and NaN preserved (quiet).
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflows to signed zero
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is still correct (up to Inf)
	}
	return sign | uint16(r)
}

// BFloat16ToFloat32 converts a bfloat16 value (the top half of a float32).
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 rounds to nearest even, keeping NaN a NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// The torch.save writer. It emits what torch.save(state_dict, path) writes
// (PyTorch >= 1.6, the zip format), so that torch.load, including
// torch.load(weights_only=True), reads it without any slab code:
//
//	archive/data.pkl    pickle protocol 2 of an OrderedDict whose values are
//	                    torch._utils._rebuild_tensor_v2(storage, offset,
//	                    size, stride, False, OrderedDict()); each storage is
//	                    the persistent id ('storage', torch.<T>Storage, key,
//	                    'cpu', numel)
//	archive/data/<key>  each tensor's storage, raw little-endian elements
//	archive/version     "3"
//	archive/byteorder   "little"
//
// Members are stored uncompressed and each storage starts 64-byte aligned
// (padding in a local extra field, as torch's writer does), so readers
// that map the file can view tensors in place. Every tensor gets its own
// dense storage; keys are written in sorted order, so the same File always
// gives the same bytes.

// storageNames maps an Entry dtype to its torch storage class.
var storageNames = map[string]string{
	"F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage", "F64": "DoubleStorage",
	"I64": "LongStorage", "I32": "IntStorage", "I16": "ShortStorage", "I8": "CharStorage",
	"U8": "ByteStorage", "BOOL": "BoolStorage",
}

// pthArchive is the directory every member lives in; torch.load accepts
// any name, torch.save uses the file's base name.
const pthArchive = "archive"

// WritePTH stores f's tensors at path as torch.save would store their state
// dict: a bare OrderedDict when wrap is "", or {wrap: state_dict} (wrap
// "model" is how DeiT/SLAB training checkpoints nest it). Metadata is not
// written: a state dict has no place for it. The write is atomic, like
// Write.
func WritePTH(path string, f *File, wrap string) error {
	if err := WriteAtomic(path, func(w io.Writer) error { return EncodePTH(w, f, wrap) }, nil); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// MarshalPTH returns the torch.save image of f (see WritePTH).
func MarshalPTH(f *File, wrap string) ([]byte, error) {
	var buf bytes.Buffer
	if err := EncodePTH(&buf, f, wrap); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EncodePTH writes the torch.save image of f to w (see WritePTH).
func EncodePTH(w io.Writer, f *File, wrap string) error {
	names := f.Names()
	type planned struct {
		e     *Entry
		dtype string
		key   string
	}
	plan := make([]planned, len(names))
	var p pickler
	p.proto()
	if wrap != "" {
		p.emptyDict()
		p.str(wrap)
	}
	p.orderedDict()
	p.mark()
	for i, name := range names {
		e := f.Tensors[name]
		if e == nil {
			return fmt.Errorf("checkpoint: tensor %q is nil", name)
		}
		dt, err := e.writeDType()
		if err != nil {
			return fmt.Errorf("checkpoint: tensor %q: %w", name, err)
		}
		have := len(e.F32)
		if !dtypes[dt].float {
			have = len(e.I64)
		}
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("checkpoint: tensor %q: negative dimension in shape %v", name, e.Shape)
			}
		}
		if n := e.Numel(); n != have {
			return fmt.Errorf("checkpoint: tensor %q: shape %v holds %d values, entry has %d", name, e.Shape, n, have)
		}
		key := fmt.Sprint(i)
		plan[i] = planned{e, dt, key}
		p.str(name)
		p.tensor(storageNames[dt], key, have, e.Shape)
	}
	p.op(opSetItems)
	if wrap != "" {
		p.op(opSetItem)
	}
	p.op(opStop)

	z := &pthZip{w: zip.NewWriter(w)}
	if err := z.member("data.pkl", p.b.Bytes()); err != nil {
		return err
	}
	chunk := make([]byte, 0, 1<<16)
	for _, pl := range plan {
		// The CRC must be in the local header before the data (torch's
		// reader does not read data descriptors), so each storage is
		// encoded twice: once through the CRC, once to the archive.
		h := crc32.NewIEEE()
		if err := encodeEntry(h, pl.e, pl.dtype, chunk); err != nil {
			return err
		}
		size := uint64(pl.e.Numel()) * uint64(dtypes[pl.dtype].size)
		mw, err := z.header("data/"+pl.key, h.Sum32(), size)
		if err != nil {
			return err
		}
		if err := encodeEntry(mw, pl.e, pl.dtype, chunk); err != nil {
			return err
		}
		z.off += size
	}
	if err := z.member("version", []byte("3\n")); err != nil {
		return err
	}
	if err := z.member("byteorder", []byte("little")); err != nil {
		return err
	}
	return z.w.Close()
}

// pthZip writes stored members, tracking the archive offset so each
// member's data starts 64-byte aligned.
type pthZip struct {
	w   *zip.Writer
	off uint64
}

// pthAlign is torch's alignment of member data.
const pthAlign = 64

func (z *pthZip) header(name string, crc uint32, size uint64) (io.Writer, error) {
	name = pthArchive + "/" + name
	const localHeader = 30
	start := z.off + localHeader + uint64(len(name)) + 4 // 4: the extra field's own header
	pad := (pthAlign - start%pthAlign) % pthAlign
	extra := make([]byte, 4+pad)
	binary.LittleEndian.PutUint16(extra, 0x4246) // "FB", torch's padding field
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	for i := 4; i < len(extra); i++ {
		extra[i] = 'Z'
	}
	fh := &zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc, CompressedSize64: size, UncompressedSize64: size, Extra: extra}
	mw, err := z.w.CreateRaw(fh)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: archive member %s: %w", name, err)
	}
	z.off = start + pad
	return mw, nil
}

func (z *pthZip) member(name string, b []byte) error {
	mw, err := z.header(name, crc32.ChecksumIEEE(b), uint64(len(b)))
	if err != nil {
		return err
	}
	if _, err := mw.Write(b); err != nil {
		return err
	}
	z.off += uint64(len(b))
	return nil
}

// Pickle opcodes the writer emits (protocol 2).
const (
	opProto     = 0x80
	opStop      = '.'
	opMark      = '('
	opGlobal    = 'c'
	opReduce    = 'R'
	opEmptyDict = '}'
	opEmptyTup  = ')'
	opTuple     = 't'
	opSetItem   = 's'
	opSetItems  = 'u'
	opBinPersID = 'Q'
	opBinInt1   = 'K'
	opBinInt2   = 'M'
	opBinInt    = 'J'
	opLong1     = 0x8a
	opBinUni    = 'X'
	opNewFalse  = 0x89
)

// pickler builds a protocol-2 pickle. It memoizes nothing: every global is
// spelled out where used, which costs a few bytes per tensor and keeps the
// writer obviously correct.
type pickler struct{ b bytes.Buffer }

func (p *pickler) op(o byte) { p.b.WriteByte(o) }
func (p *pickler) proto()    { p.b.Write([]byte{opProto, 2}) }
func (p *pickler) mark()     { p.op(opMark) }
func (p *pickler) emptyDict() {
	p.op(opEmptyDict)
}

func (p *pickler) global(module, name string) {
	p.op(opGlobal)
	p.b.WriteString(module + "\n" + name + "\n")
}

// orderedDict pushes collections.OrderedDict().
func (p *pickler) orderedDict() {
	p.global("collections", "OrderedDict")
	p.op(opEmptyTup)
	p.op(opReduce)
}

func (p *pickler) str(s string) {
	p.op(opBinUni)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.b.Write(n[:])
	p.b.WriteString(s)
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.b.Write([]byte{opBinInt1, byte(v)})
	case v >= 0 && v < 1<<16:
		p.b.Write([]byte{opBinInt2, byte(v), byte(v >> 8)})
	case v >= math.MinInt32 && v <= math.MaxInt32:
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		p.op(opBinInt)
		p.b.Write(n[:])
	default:
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		p.b.Write([]byte{opLong1, 8})
		p.b.Write(n[:])
	}
}

func (p *pickler) ints(vs []int64) {
	p.mark()
	for _, v := range vs {
		p.int(v)
	}
	p.op(opTuple)
}

// tensor pushes _rebuild_tensor_v2 of a dense, C-contiguous tensor over a
// storage of its own.
func (p *pickler) tensor(storage, key string, numel int, shape []int) {
	size := make([]int64, len(shape))
	stride := make([]int64, len(shape))
	s := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		size[i], stride[i] = int64(shape[i]), s
		s *= int64(max(shape[i], 1))
	}
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.mark()
	// persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
	p.mark()
	p.str("storage")
	p.global("torch", storage)
	p.str(key)
	p.str("cpu")
	p.int(int64(numel))
	p.op(opTuple)
	p.op(opBinPersID)
	p.int(0) // storage offset
	p.ints(size)
	p.ints(stride)
	p.op(opNewFalse) // requires_grad
	p.orderedDict()  // backward hooks
	p.op(opTuple)
	p.op(opReduce)
}

package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"
)

// StateDictKeys are the keys under which a training checkpoint nests its
// state dict, in the order ReadPTH prefers them: DeiT/SLAB save
// {"model": ..., "optimizer": ..., "epoch": ...}, other trainers use
// "state_dict", and timm EMA checkpoints add "model_ema".
var StateDictKeys = []string{"model", "state_dict", "model_ema"}

// ReadPTH loads a PyTorch checkpoint written by torch.save (the zip format
// of PyTorch >= 1.6, or the legacy format) and returns its state dict as a
// File: every tensor with its dotted name, floats widened to float32 and
// integer tensors (iter, total_step, num_batches_tracked) as int64.
//
// When the top level is a dict holding one of StateDictKeys as a dict, that
// one (the first in StateDictKeys order) is the state dict, and Metadata
// records it as "pth.state_dict_key"; the other top-level scalars (epoch,
// max_accuracy ...) go to Metadata as their Python text form. Anything else
// that is not a tensor (optimizer state, config objects) is skipped.
func ReadPTH(path string) (*File, error) { return ReadPTHKey(path, "") }

// ReadPTHKey is ReadPTH choosing the state dict under key explicitly (for
// instance "model_ema"); an empty key means the default choice.
func ReadPTHKey(path, key string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The buffer is private here, so tensors may view it (see readPTH).
	return readPTH(b, path, key, true)
}

// ReadPTHBytes decodes a torch.save image held in memory; name labels
// errors and key is as in ReadPTHKey.
func ReadPTHBytes(b []byte, name, key string) (*File, error) {
	return readPTH(b, name, key, false)
}

// readPTH is ReadPTHBytes; alias lets little-endian float32 tensors view b
// (each entry keeps its own length and capacity), so a large checkpoint is
// held in memory about once instead of three times.
func readPTH(b []byte, name, key string, alias bool) (f *File, err error) {
	// Every input is bounds-checked; this recover is only a last line of
	// defence so that a bug can never turn a bad file into a crash.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("checkpoint: %s: corrupt PyTorch file (internal error: %v)", name, r)
		}
	}()
	var root any
	var ld *pthLoader
	if len(b) >= 4 && string(b[:4]) == "PK\x03\x04" {
		ld, root, err = loadZip(b, alias)
	} else {
		ld, root, err = loadLegacy(b, alias)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	f, err = ld.stateDict(root, key)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	return f, nil
}

// storageType describes a torch.<X>Storage class.
type storageType struct {
	dtype string // safetensors name of the element type
	size  int
}

var storageTypes = map[string]storageType{
	"FloatStorage": {"F32", 4}, "HalfStorage": {"F16", 2}, "BFloat16Storage": {"BF16", 2},
	"DoubleStorage": {"F64", 8}, "LongStorage": {"I64", 8}, "IntStorage": {"I32", 4},
	"ShortStorage": {"I16", 2}, "CharStorage": {"I8", 1}, "ByteStorage": {"U8", 1},
	"BoolStorage": {"BOOL", 1},
}

// storage is one torch storage, decoded on first use so a tensor that is
// never referenced costs nothing, and decoded once however many tensors
// view it.
type storage struct {
	key   string
	typ   storageType
	numel int64
	raw   []byte // little-endian elements, len == numel*size
	f32   []float32
	i64   []int64
	// alias lets f32 view raw (F32 on a little-endian machine, when raw
	// is private to the reader); views counts the tensors built on the
	// storage and given records that f32 was handed to an Entry as is.
	alias bool
	views int
	given bool
}

func (s *storage) floats() []float32 {
	if s.f32 == nil {
		if s.alias && littleEndian && s.typ.dtype == "F32" && s.numel > 0 && uintptr(unsafe.Pointer(&s.raw[0]))%4 == 0 {
			s.f32 = unsafe.Slice((*float32)(unsafe.Pointer(&s.raw[0])), s.numel)
		} else {
			s.f32 = make([]float32, s.numel)
			decodeFloats(s.f32, s.raw, s.typ.dtype)
		}
	}
	return s.f32
}

func (s *storage) ints() []int64 {
	if s.i64 == nil {
		s.i64 = make([]int64, s.numel)
		decodeInts(s.i64, s.raw, s.typ.dtype)
	}
	return s.i64
}

// ptTensor is a rebuilt torch tensor: a strided view of a storage.
type ptTensor struct {
	st     *storage
	offset int64
	size   []int
	stride []int64
}

// pthLoader holds what the unpickler's hooks need.
type pthLoader struct {
	storages map[string]*storage
	order    []*storage // first-use order, for deterministic errors
}

func (ld *pthLoader) unpickler(b []byte) *unpickler {
	return &unpickler{b: b, persistentLoad: ld.persistentLoad, call: ld.call}
}

// persistentLoad resolves ('storage', torch.XStorage, key, location, numel
// [, view_metadata]) ids.
func (ld *pthLoader) persistentLoad(id any) (any, error) {
	t, ok := id.(pyTuple)
	if !ok || len(t) < 5 || t[0] != "storage" {
		return nil, fmt.Errorf("unsupported persistent id %v", describe(id))
	}
	g, ok := t[1].(*pyGlobal)
	if !ok {
		return nil, errors.New("storage id without a storage class")
	}
	typ, ok := storageTypes[g.name]
	if !ok || (g.module != "torch" && g.module != "torch.cuda") {
		return nil, fmt.Errorf("unsupported storage type %s.%s", g.module, g.name)
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, errors.New("storage key is not a string")
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %v", key, describe(t[4]))
	}
	if len(t) > 5 && t[5] != nil {
		return nil, fmt.Errorf("storage %s: legacy storage views are not supported", key)
	}
	if s, ok := ld.storages[key]; ok {
		if s.typ != typ {
			return nil, fmt.Errorf("storage %s used as both %s and %s", key, s.typ.dtype, typ.dtype)
		}
		return s, nil
	}
	// The bytes are attached after unpickling (in the legacy format they
	// follow the pickle), so only the declared size is known here.
	s := &storage{key: key, typ: typ, numel: numel}
	ld.storages[key] = s
	ld.order = append(ld.order, s)
	return s, nil
}

// call implements the allow-listed callables torch.save emits.
func (ld *pthLoader) call(g *pyGlobal, args []any) (any, bool, error) {
	switch g.module + "." + g.name {
	case "collections.OrderedDict", "__builtin__.dict", "builtins.dict":
		if len(args) != 0 {
			return nil, true, errors.New("dict constructor with arguments")
		}
		return newDict(), true, nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		t, err := rebuildTensor(args)
		return t, true, err
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state]): a Parameter is
		// its data.
		if len(args) < 1 {
			return nil, true, errors.New("no data")
		}
		if _, ok := args[0].(*ptTensor); !ok {
			return nil, true, fmt.Errorf("parameter data is a %s", describe(args[0]))
		}
		return args[0], true, nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, type, args, state): rebuild with func, drop the subclass.
		if len(args) < 3 {
			return nil, true, errors.New("too few arguments")
		}
		fg, ok1 := args[0].(*pyGlobal)
		inner, ok2 := args[2].(pyTuple)
		if !ok1 || !ok2 {
			return nil, true, errors.New("bad arguments")
		}
		v, ok, err := ld.call(fg, inner)
		if !ok && err == nil {
			err = fmt.Errorf("unsupported rebuild function %s.%s", fg.module, fg.name)
		}
		return v, true, err
	}
	return nil, false, nil
}

// rebuildTensor checks and records (storage, offset, size, stride, ...);
// values are gathered later, only for tensors that end up in the result.
func rebuildTensor(args []any) (*ptTensor, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("%d arguments, want at least 4", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("storage argument is a %s", describe(args[0]))
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("bad storage offset %s", describe(args[1]))
	}
	sizes, ok1 := args[2].(pyTuple)
	strides, ok2 := args[3].(pyTuple)
	if !ok1 || !ok2 || len(sizes) != len(strides) {
		return nil, fmt.Errorf("size %s and stride %s do not match", describe(args[2]), describe(args[3]))
	}
	st.views++
	t := &ptTensor{st: st, offset: off, size: make([]int, len(sizes)), stride: make([]int64, len(sizes))}
	numel := int64(1)
	last := off // highest storage index touched
	for i := range sizes {
		d, ok1 := sizes[i].(int64)
		s, ok2 := strides[i].(int64)
		if !ok1 || !ok2 || d < 0 || s < 0 {
			return nil, fmt.Errorf("bad size %s or stride %s", describe(args[2]), describe(args[3]))
		}
		if d == 0 {
			numel = 0
		}
		t.size[i], t.stride[i] = int(d), s
	}
	if numel != 0 {
		for i := range t.size {
			d, s := int64(t.size[i]), t.stride[i]
			// Bound every step so nothing overflows. A tensor may hold
			// more elements than its storage only through zero strides
			// (expand); those are capped so a tiny file cannot demand a
			// huge gather.
			if numel > max(st.numel, 1<<20)/d || (s > 0 && d-1 > st.numel/s) {
				return nil, fmt.Errorf("size %v stride %v exceed storage %s of %d elements", t.size, t.stride, st.key, st.numel)
			}
			numel *= d
			last += (d - 1) * s
		}
		if last >= st.numel {
			return nil, fmt.Errorf("size %v stride %v offset %d reach element %d of storage %s (%d elements)",
				t.size, t.stride, off, last, st.key, st.numel)
		}
	}
	return t, nil
}

// entry gathers the tensor's values (by strides) into a dense Entry.
func (t *ptTensor) entry() *Entry {
	e := &Entry{DType: t.st.typ.dtype, Shape: append([]int{}, t.size...)}
	n := 1
	for _, d := range t.size {
		n *= d
	}
	float := dtypes[t.st.typ.dtype].float
	if n == 0 {
		if float {
			e.F32 = []float32{}
		} else {
			e.I64 = []int64{}
		}
		return e
	}
	contig, want := true, int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			contig = false
			break
		}
		want *= int64(t.size[i])
	}
	var f32 []float32
	var i64 []int64
	if float {
		f32 = t.st.floats()
		// The usual state dict tensor owns its whole storage: hand the
		// decoded values over instead of copying them (once only, since
		// the memo can reference one tensor under several names).
		if contig && t.offset == 0 && int64(n) == t.st.numel && t.st.views == 1 && !t.st.given {
			t.st.given = true
			e.F32 = f32[:n:n]
			return e
		}
		e.F32 = make([]float32, n)
	} else {
		i64 = t.st.ints()
		e.I64 = make([]int64, n)
	}
	if contig {
		if float {
			copy(e.F32, f32[t.offset:t.offset+int64(n)])
		} else {
			copy(e.I64, i64[t.offset:t.offset+int64(n)])
		}
		return e
	}
	// General strides: walk a multi-index like an odometer.
	idx := make([]int, len(t.size))
	pos := t.offset
	for k := 0; k < n; k++ {
		if float {
			e.F32[k] = f32[pos]
		} else {
			e.I64[k] = i64[pos]
		}
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= int64(idx[d]) * t.stride[d]
			idx[d] = 0
		}
	}
	return e
}

// loadZip reads the torch >= 1.6 format: a zip holding <dir>/data.pkl and
// one member <dir>/data/<key> per storage.
func loadZip(b []byte, alias bool) (*pthLoader, any, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("not a valid zip archive: %w", err)
	}
	members := map[string]*zip.File{}
	prefix := ""
	for _, zf := range zr.File {
		members[zf.Name] = zf
		if strings.HasSuffix(zf.Name, "/data.pkl") && strings.Count(zf.Name, "/") == 1 {
			prefix = strings.TrimSuffix(zf.Name, "data.pkl")
		}
	}
	if prefix == "" {
		if _, ok := members["data.pkl"]; !ok {
			return nil, nil, errors.New("zip archive has no data.pkl: not a torch.save file")
		}
	}
	if _, ok := members[prefix+"constants.pkl"]; ok {
		return nil, nil, errors.New("a TorchScript archive, not a state dict (save model.state_dict() instead)")
	}
	if zf, ok := members[prefix+"byteorder"]; ok {
		bo, err := readMember(zf, 16, int64(len(b)))
		if err != nil {
			return nil, nil, fmt.Errorf("byteorder: %w", err)
		}
		if string(bo) != "little" {
			return nil, nil, fmt.Errorf("byte order %q is not supported", bo)
		}
	}
	pkl, err := readMember(members[prefix+"data.pkl"], int64(len(b))*maxDeflateRatio, int64(len(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("data.pkl: %w", err)
	}
	ld := &pthLoader{storages: map[string]*storage{}}
	root, err := ld.unpickler(pkl).run()
	if err != nil {
		return nil, nil, fmt.Errorf("data.pkl: %w", err)
	}
	for _, s := range ld.order {
		zf, ok := members[prefix+"data/"+s.key]
		if !ok {
			return nil, nil, fmt.Errorf("storage %s: missing from the archive", s.key)
		}
		want := uint64(s.numel) * uint64(s.typ.size)
		if s.numel > math.MaxInt64/8 || zf.UncompressedSize64 < want {
			return nil, nil, fmt.Errorf("storage %s: %d %s elements need %d bytes, the archive member holds %d (truncated?)",
				s.key, s.numel, s.typ.dtype, want, zf.UncompressedSize64)
		}
		if zf.Method == zip.Store {
			// torch stores members uncompressed: view them in place,
			// checking the CRC that reading through archive/zip would.
			off, err := zf.DataOffset()
			if err != nil || off < 0 || zf.CompressedSize64 != zf.UncompressedSize64 || uint64(off)+zf.UncompressedSize64 > uint64(len(b)) {
				return nil, nil, fmt.Errorf("storage %s: archive member %s is truncated or corrupt", s.key, zf.Name)
			}
			full := b[off : uint64(off)+zf.UncompressedSize64]
			if crc32.ChecksumIEEE(full) != zf.CRC32 {
				return nil, nil, fmt.Errorf("storage %s: archive member %s fails its CRC check (corrupt)", s.key, zf.Name)
			}
			s.raw, s.alias = full[:want:want], alias
			continue
		}
		if s.raw, err = readMember(zf, int64(want), int64(len(b))); err != nil {
			return nil, nil, fmt.Errorf("storage %s: %w", s.key, err)
		}
		s.alias = true // a private copy
	}
	return ld, root, nil
}

// maxDeflateRatio bounds how far a compressed zip member may claim to
// expand (deflate cannot exceed ~1032:1), so a forged size field cannot
// trigger a huge allocation.
const maxDeflateRatio = 1100

// readMember reads n = min(size, limit) bytes of a zip member. torch
// stores members uncompressed; the checks against the archive size only
// matter for forged files.
func readMember(zf *zip.File, limit, archive int64) ([]byte, error) {
	n := min(zf.UncompressedSize64, uint64(limit))
	c := zf.CompressedSize64
	if c > uint64(archive) || (zf.Method == zip.Store && c < n) || (zf.Method != zip.Store && n > c*maxDeflateRatio+1024) {
		return nil, fmt.Errorf("member %s claims %d bytes from %d stored: corrupt or truncated", zf.Name, n, c)
	}
	r, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", zf.Name, err)
	}
	defer r.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("member %s: %w", zf.Name, err)
	}
	return buf, nil
}

// legacyMagic is how the legacy format (torch < 1.6, or
// _use_new_zipfile_serialization=False) starts: pickle protocol 2 and the
// magic number 0x1950a86a20f9469cfc6c as a 10-byte LONG1. decodeLong
// rejects integers that wide, so the bytes are matched directly.
var legacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'}

// loadLegacy reads the legacy format: the magic, protocol-version and
// sys-info pickles, the object pickle, a pickled list of storage keys, then
// each storage as an 8-byte element count followed by its raw data, in the
// order of that list.
func loadLegacy(b []byte, alias bool) (*pthLoader, any, error) {
	if !bytes.HasPrefix(b, legacyMagic) {
		return nil, nil, errors.New("neither a zip archive nor a legacy torch.save file (bad magic number)")
	}
	pos := len(legacyMagic)
	next := func(u *unpickler) (any, error) {
		u.pos = pos
		v, err := u.run()
		pos = u.pos
		return v, err
	}
	ver, err := next(&unpickler{b: b})
	if err != nil || ver != int64(1001) {
		return nil, nil, fmt.Errorf("legacy torch.save protocol %v is not supported (want 1001) %v", describe(ver), err)
	}
	info, err := next(&unpickler{b: b})
	if err != nil {
		return nil, nil, fmt.Errorf("sys info: %w", err)
	}
	if d, ok := info.(*pyDict); ok {
		if le, ok := d.get("little_endian"); ok && le != true {
			return nil, nil, errors.New("big-endian legacy files are not supported")
		}
	}
	ld := &pthLoader{storages: map[string]*storage{}}
	root, err := next(ld.unpickler(b))
	if err != nil {
		return nil, nil, err
	}
	keysV, err := next(&unpickler{b: b})
	if err != nil {
		return nil, nil, fmt.Errorf("storage key list: %w", err)
	}
	keys, ok := keysV.(*pyList)
	if !ok {
		return nil, nil, fmt.Errorf("storage key list is a %s", describe(keysV))
	}
	for _, kv := range keys.items {
		key, ok := kv.(string)
		if !ok {
			return nil, nil, fmt.Errorf("storage key %s is not a string", describe(kv))
		}
		if len(b)-pos < 8 {
			return nil, nil, fmt.Errorf("storage %s: file truncated", key)
		}
		numel := binary.LittleEndian.Uint64(b[pos:])
		pos += 8
		s, ok := ld.storages[key]
		if !ok {
			return nil, nil, fmt.Errorf("storage %s is listed but never used", key)
		}
		if numel != uint64(s.numel) {
			return nil, nil, fmt.Errorf("storage %s: %d elements on disk, %d declared", key, numel, s.numel)
		}
		if numel > uint64(len(b)-pos)/uint64(s.typ.size) {
			return nil, nil, fmt.Errorf("storage %s: file truncated", key)
		}
		n := int(numel) * s.typ.size
		s.raw, s.alias = b[pos:pos+n:pos+n], alias
		pos += n
	}
	for _, s := range ld.order {
		if s.raw == nil && s.numel > 0 {
			return nil, nil, fmt.Errorf("storage %s: no data in the file", s.key)
		}
	}
	return ld, root, nil
}

// stateDict picks and flattens the state dict out of the unpickled root.
func (ld *pthLoader) stateDict(root any, key string) (*File, error) {
	f := NewFile()
	sd := root
	if d, ok := root.(*pyDict); ok {
		keys := StateDictKeys
		if key != "" {
			keys = []string{key}
		}
		chosen := ""
		for _, k := range keys {
			if v, ok := d.get(k); ok {
				if _, isDict := v.(*pyDict); isDict {
					sd, chosen = v, k
					break
				}
			}
		}
		if key != "" && chosen == "" {
			return nil, fmt.Errorf("no state dict under key %q (top-level keys: %s)", key, topKeys(d))
		}
		if chosen != "" {
			f.Metadata["pth.state_dict_key"] = chosen
			for i, k := range d.keys {
				ks, ok := k.(string)
				if !ok || ks == chosen {
					continue
				}
				if s, ok := scalarText(d.vals[i]); ok {
					f.Metadata[ks] = s
				}
			}
		}
	}
	switch v := sd.(type) {
	case *ptTensor:
		return nil, errors.New("the file holds a single tensor, not a state dict")
	case *pyDict:
		if err := flatten(f, "", v, 0, ld.newFlattenLimits()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the file holds a %s, not a state dict", describe(sd))
	}
	if len(f.Tensors) == 0 {
		return nil, errors.New("no tensors found")
	}
	return f, nil
}

func topKeys(d *pyDict) string {
	var ks []string
	for _, k := range d.keys {
		if s, ok := k.(string); ok {
			ks = append(ks, s)
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// flattenLimits bound the work a small hostile file can cause: the memo
// lets a pickle reference one dict or tensor many times for a few bytes
// each, so nested references could otherwise multiply into exponentially
// many names or gigabytes of copies.
type flattenLimits struct {
	visits int   // dict keys still allowed to be visited
	elems  int64 // tensor elements still allowed to be gathered
}

// newFlattenLimits allows four times the stored elements (ordinary state
// dicts gather each stored element once, tied weights twice) plus slack for
// small zero-stride expansions.
func (ld *pthLoader) newFlattenLimits() *flattenLimits {
	var stored int64
	for _, s := range ld.order {
		stored += s.numel
	}
	return &flattenLimits{visits: 1 << 20, elems: 4*stored + 1<<22}
}

// flatten adds every tensor of d (and of nested dicts, with dotted names).
func flatten(f *File, prefix string, d *pyDict, depth int, lim *flattenLimits) error {
	if depth > 32 {
		return errors.New("dicts nested too deeply (a cycle?)")
	}
	for i, k := range d.keys {
		if lim.visits--; lim.visits < 0 {
			return errors.New("too many state dict entries (a dict referenced many times?)")
		}
		var ks string
		switch k := k.(type) {
		case string:
			ks = k
		case int64:
			ks = strconv.FormatInt(k, 10)
		default:
			continue
		}
		name := prefix + ks
		switch v := d.vals[i].(type) {
		case *ptTensor:
			n := int64(1)
			for _, s := range v.size {
				n *= int64(s) // bounded by rebuildTensor
			}
			if lim.elems -= n; lim.elems < 0 {
				return fmt.Errorf("tensor %q: tensors expand to far more elements than the file stores (storages referenced many times?)", name)
			}
			f.Tensors[name] = v.entry()
		case *pyDict:
			if err := flatten(f, name+".", v, depth+1, lim); err != nil {
				return err
			}
		}
	}
	return nil
}

// scalarText renders Python scalars for Metadata.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case string:
		return v, true
	case bool:
		if v {
			return "True", true
		}
		return "False", true
	}
	return "", false
}

// describe names a pickle value's kind for error messages without dumping
// (possibly huge, possibly self-referencing) contents.
func describe(v any) string { return describeDepth(v, 0) }

func describeDepth(v any, depth int) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case int64, float64, bool:
		return fmt.Sprint(v)
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	case pyTuple:
		// Nested tuples are shown two levels deep only: through the memo
		// a few bytes can nest tuples of references exponentially.
		if len(v) <= 8 && depth < 2 {
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = describeDepth(x, depth+1)
			}
			return "(" + strings.Join(parts, ", ") + ")"
		}
		return fmt.Sprintf("tuple of %d", len(v))
	case *pyList:
		return fmt.Sprintf("list of %d", len(v.items))
	case *pyDict:
		return fmt.Sprintf("dict of %d", len(v.keys))
	case *pyGlobal:
		return v.module + "." + v.name
	case *pyObject:
		return v.class.module + "." + v.class.name + " object"
	case *ptTensor:
		return fmt.Sprintf("tensor %v", v.size)
	case *storage:
		return "storage " + v.key
	}
	return fmt.Sprintf("%T", v)
}

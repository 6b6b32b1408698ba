package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file is a small pickle virtual machine covering the opcodes
// torch.save emits (protocols 0-5, though torch uses 2). It was written
// instead of using github.com/nlpodyssey/gopickle v0.2.0 (the served
// version) because that unpickler allocates make([]byte, n) straight from a
// length field before reading, so a 20-byte file can demand 4 GiB (or panic
// on a 64-bit length), it panics on an odd SETITEMS, and it reads only
// from a file name. Here the whole pickle is in memory, every length is
// checked against the bytes that remain, and nothing a pickle names is ever
// executed: globals become inert values, and only the allow-listed
// rebuild functions in pth.go are "called".

// Python values as the VM represents them: nil (None), bool, int64,
// float64, string, []byte, pyTuple, *pyList, *pyDict, *pyGlobal, *pyObject
// and whatever the call and persistentLoad hooks return.
type (
	pyTuple []any
	pyList  struct{ items []any }
	// pyDict keeps insertion order (state dicts are OrderedDicts) and
	// indexes string and integer keys for replacement on duplicate SETITEM.
	pyDict struct {
		keys, vals []any
		index      map[any]int
		attrs      any // BUILD state, e.g. an OrderedDict's _metadata
	}
	// pyGlobal is a module-level name (GLOBAL / STACK_GLOBAL), never
	// resolved to code.
	pyGlobal struct{ module, name string }
	// pyObject is an instance of a class outside the allow-list (argparse
	// Namespace, yacs CfgNode ...): kept opaque so such files still load.
	pyObject struct {
		class *pyGlobal
		args  []any
		state any
		items []any
	}
	pyMark struct{}
)

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) {
	switch k.(type) {
	case string, int64, bool, float64, nil:
		if i, ok := d.index[k]; ok {
			d.vals[i] = v
			return
		}
		d.index[k] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

func (d *pyDict) get(k string) (any, bool) {
	if i, ok := d.index[k]; ok {
		return d.vals[i], true
	}
	return nil, false
}

// unpickler runs one pickle held in memory.
type unpickler struct {
	b     []byte
	pos   int
	stack []any
	marks []int
	memo  map[int]any
	// persistentLoad resolves BINPERSID ids (torch storages).
	persistentLoad func(id any) (any, error)
	// call applies an allow-listed global to arguments; ok=false means
	// "not allow-listed", and the VM builds an opaque pyObject instead.
	call func(g *pyGlobal, args []any) (v any, ok bool, err error)
}

var errPickleEOF = errors.New("pickle truncated")

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.b)-u.pos {
		return nil, errPickleEOF
	}
	s := u.b[u.pos : u.pos+n]
	u.pos += n
	return s, nil
}

func (u *unpickler) readLen(size int) (int, error) {
	s, err := u.read(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(s[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(s))
	case 8:
		n = binary.LittleEndian.Uint64(s)
	}
	// A length beyond the remaining bytes is corruption; checking here
	// means no allocation is ever sized by an unchecked field.
	if n > uint64(len(u.b)-u.pos) {
		return 0, fmt.Errorf("length %d exceeds the %d bytes left in the pickle", n, len(u.b)-u.pos)
	}
	return int(n), nil
}

func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.b[u.pos:], '\n')
	if i < 0 {
		return "", errPickleEOF
	}
	s := string(u.b[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	floor := 0
	if len(u.marks) > 0 {
		floor = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= floor {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	floor := 0
	if len(u.marks) > 0 {
		floor = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= floor {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns (a copy of) the items above the newest mark and removes
// them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i int) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if i < 0 {
		return fmt.Errorf("negative memo index %d", i)
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i int) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo index %d not set", i)
	}
	u.push(v)
	return nil
}

// apply is REDUCE / NEWOBJ: an allow-listed call or an inert object.
func (u *unpickler) apply(f any, args []any) (any, error) {
	g, ok := f.(*pyGlobal)
	if !ok {
		return nil, fmt.Errorf("cannot call a %T", f)
	}
	if u.call != nil {
		v, ok, err := u.call(g, args)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", g.module, g.name, err)
		}
		if ok {
			return v, nil
		}
	}
	return &pyObject{class: g, args: args}, nil
}

func decodeLong(s []byte) (int64, error) {
	if len(s) == 0 {
		return 0, nil
	}
	if len(s) > 8 {
		// torch never pickles integers beyond int64 in a state dict.
		return 0, fmt.Errorf("integer of %d bytes too large", len(s))
	}
	var v uint64
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	shift := 64 - 8*uint(len(s))
	return int64(v<<shift) >> shift, nil // sign-extend
}

// run executes the pickle and returns the value STOP leaves.
func (u *unpickler) run() (any, error) {
	if u.memo == nil {
		u.memo = map[int]any{}
	}
	for {
		if u.pos >= len(u.b) {
			return nil, errPickleEOF
		}
		op := u.b[u.pos]
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				return u.pop()
			}
			return nil, fmt.Errorf("pickle opcode %#02x at byte %d: %w", op, u.pos-1, err)
		}
	}
}

var errStop = errors.New("STOP")

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		_, err := u.read(1)
		return err
	case 0x95: // FRAME: framing is irrelevant with the whole pickle in memory
		_, err := u.read(8)
		return err
	case '.': // STOP
		return errStop
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		if len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1] {
			_, err := u.popMark()
			return err
		}
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case 'N':
		u.push(nil)
	case 0x88: // NEWTRUE
		u.push(true)
	case 0x89: // NEWFALSE
		u.push(false)
	case 'J': // BININT
		s, err := u.read(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(binary.LittleEndian.Uint32(s))))
	case 'K': // BININT1
		s, err := u.read(1)
		if err != nil {
			return err
		}
		u.push(int64(s[0]))
	case 'M': // BININT2
		s, err := u.read(2)
		if err != nil {
			return err
		}
		u.push(int64(binary.LittleEndian.Uint16(s)))
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := u.readLen(size)
		if err != nil {
			return err
		}
		s, _ := u.read(n)
		v, err := decodeLong(s)
		if err != nil {
			return err
		}
		u.push(v)
	case 'I', 'L': // INT, LONG (protocol 0 text)
		s, err := u.line()
		if err != nil {
			return err
		}
		switch s {
		case "01":
			u.push(true)
			return nil
		case "00":
			u.push(false)
			return nil
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(s, "L"), 10, 64)
		if err != nil {
			return err
		}
		u.push(v)
	case 'G': // BINFLOAT (big-endian)
		s, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(s)))
	case 'F': // FLOAT (text)
		s, err := u.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		u.push(v)
	case 'X', 0x8c, 0x8d, 'T', 'U': // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
		size := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8, 'T': 4, 'U': 1}[op]
		n, err := u.readLen(size)
		if err != nil {
			return err
		}
		s, _ := u.read(n)
		u.push(string(s))
	case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		size := map[byte]int{'B': 4, 'C': 1, 0x8e: 8, 0x96: 8}[op]
		n, err := u.readLen(size)
		if err != nil {
			return err
		}
		s, _ := u.read(n)
		u.push(append([]byte(nil), s...))
	case 'V', 'S': // UNICODE, STRING (text); STRING is quoted
		s, err := u.line()
		if err != nil {
			return err
		}
		if op == 'S' {
			if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
				return errors.New("STRING not quoted")
			}
			s = s[1 : len(s)-1]
		}
		u.push(s)
	case ')': // EMPTY_TUPLE
		u.push(pyTuple{})
	case 't': // TUPLE
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op - 0x84)
		t := make(pyTuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := u.pop()
			if err != nil {
				return err
			}
			t[i] = v
		}
		u.push(t)
	case ']': // EMPTY_LIST
		u.push(&pyList{})
	case 'l': // LIST
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case '}': // EMPTY_DICT
		u.push(newDict())
	case 'd': // DICT
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return errors.New("DICT with an odd number of items")
		}
		d := newDict()
		for i := 0; i < len(items); i += 2 {
			d.set(items[i], items[i+1])
		}
		u.push(d)
	case 0x8f: // EMPTY_SET: kept as a list; torch state dicts hold no sets
		u.push(&pyList{})
	case 0x90, 0x91: // ADDITEMS, FROZENSET
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if op == 0x91 {
			u.push(&pyList{items: items})
			return nil
		}
		v, err := u.top()
		if err != nil {
			return err
		}
		l, ok := v.(*pyList)
		if !ok {
			return fmt.Errorf("ADDITEMS to a %T", v)
		}
		l.items = append(l.items, items...)
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		return u.appendTo([]any{v})
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.appendTo(items)
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		return u.setItems([]any{k, v})
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		if len(items)%2 != 0 {
			return errors.New("SETITEMS with an odd number of items")
		}
		return u.setItems(items)
	case 'c': // GLOBAL
		mod, err := u.line()
		if err != nil {
			return err
		}
		name, err := u.line()
		if err != nil {
			return err
		}
		u.push(&pyGlobal{mod, name})
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return err
		}
		mod, err := u.pop()
		if err != nil {
			return err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL needs two strings")
		}
		u.push(&pyGlobal{ms, ns})
	case 'R', 0x81: // REDUCE, NEWOBJ
		args, err := u.pop()
		if err != nil {
			return err
		}
		f, err := u.pop()
		if err != nil {
			return err
		}
		t, ok := args.(pyTuple)
		if !ok {
			return fmt.Errorf("arguments are a %T, not a tuple", args)
		}
		v, err := u.apply(f, t)
		if err != nil {
			return err
		}
		u.push(v)
	case 0x92: // NEWOBJ_EX
		if _, err := u.pop(); err != nil { // kwargs: ignored
			return err
		}
		args, err := u.pop()
		if err != nil {
			return err
		}
		f, err := u.pop()
		if err != nil {
			return err
		}
		t, _ := args.(pyTuple)
		v, err := u.apply(f, t)
		if err != nil {
			return err
		}
		u.push(v)
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case *pyObject:
			o.state = state
		case *pyDict:
			o.attrs = state
		}
		// BUILD on anything else (a tensor's _backward_hooks state, say)
		// carries nothing slab needs.
	case 'Q': // BINPERSID
		id, err := u.pop()
		if err != nil {
			return err
		}
		if u.persistentLoad == nil {
			return errors.New("persistent id without a loader")
		}
		v, err := u.persistentLoad(id)
		if err != nil {
			return err
		}
		u.push(v)
	case 'q': // BINPUT
		s, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoPut(int(s[0]))
	case 'r': // LONG_BINPUT
		s, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoPut(int(binary.LittleEndian.Uint32(s)))
	case 0x94: // MEMOIZE
		return u.memoPut(len(u.memo))
	case 'p', 'g': // PUT, GET (text)
		s, err := u.line()
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		if op == 'p' {
			return u.memoPut(i)
		}
		return u.memoGet(i)
	case 'h': // BINGET
		s, err := u.read(1)
		if err != nil {
			return err
		}
		return u.memoGet(int(s[0]))
	case 'j': // LONG_BINGET
		s, err := u.read(4)
		if err != nil {
			return err
		}
		return u.memoGet(int(binary.LittleEndian.Uint32(s)))
	default:
		return errors.New("unsupported opcode")
	}
	return nil
}

func (u *unpickler) appendTo(items []any) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	switch l := v.(type) {
	case *pyList:
		l.items = append(l.items, items...)
	case *pyObject:
		l.items = append(l.items, items...)
	default:
		return fmt.Errorf("APPEND to a %T", v)
	}
	return nil
}

func (u *unpickler) setItems(kv []any) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	switch d := v.(type) {
	case *pyDict:
		for i := 0; i < len(kv); i += 2 {
			d.set(kv[i], kv[i+1])
		}
	case *pyObject: // a dict subclass outside the allow-list
		d.items = append(d.items, kv...)
	default:
		return fmt.Errorf("SETITEM on a %T", v)
	}
	return nil
}

package models

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Quantized checkpoints (slab quantize). A model whose Linear weights are
// held in bf16 or int8 only (nn.Quantize, nn.Stored) is written with those
// weights in their dtype, everything else float32 as usual:
//
//   - bf16: "<name>.weight" BF16 [out, in] (the bits nn.Quantize rounded).
//   - int8: "<name>.weight" I8 [out, in] (codes in [-127, 127]) and
//     "<name>.weight_scale" F32 [out, in/group]: weight[o][i] =
//     code[o][i] * scale[o][i/group]; group = in / the scale's columns
//     (one column: a scale per output channel).
//
// The metadata records "dtype" (bf16 or int8) and, for int8, "int8_group"
// (the group size every Linear shares, or "varies"). Loading such a file
// builds the low-precision Linears from those bytes (checkpoint.ReadRaw:
// no float32 copy of them is ever made) and the model cannot be folded or
// quantized to another dtype: the float32 weights are not in the file.

// Metadata keys and name suffix of a quantized checkpoint.
const (
	// MetaDtype records the dtype of the Linear weights ("bf16", "int8");
	// absent in float32 checkpoints.
	MetaDtype = "dtype"
	// MetaGroup records the int8 scale group.
	MetaGroup = "int8_group"
	// ScaleSuffix follows an int8 weight's name in its scales' name.
	ScaleSuffix = "_scale"
)

// FileDtype returns the dtype of the Linear weights a checkpoint records
// (kernels.F32 when it records none).
func FileDtype(f *checkpoint.File, path string) (kernels.Dtype, error) {
	s, ok := f.Metadata[MetaDtype]
	if !ok {
		return kernels.F32, nil
	}
	d, err := kernels.ParseDtype(s)
	if err != nil {
		return d, fmt.Errorf("%s: metadata %s: %v", path, MetaDtype, err)
	}
	return d, nil
}

// storedEntries returns the checkpoint entries of m's Linear weights held
// in low precision only, their dtype (kernels.F32: none) and the int8
// group they share (0: none, -1: they differ).
func storedEntries(m nn.Module) (map[string]*checkpoint.Entry, kernels.Dtype, int) {
	out := map[string]*checkpoint.Entry{}
	dtype, group := kernels.F32, 0
	for _, p := range m.Params() {
		q := nn.StoredWeight(p)
		if q == nil {
			continue
		}
		dtype = q.Dtype
		shape := []int{q.N, q.K}
		if q.Dtype == kernels.BF16 {
			out[p.Name] = checkpoint.NewBF16Entry(shape, q.BF16)
			continue
		}
		codes, scales := q.Int8Parts()
		out[p.Name] = checkpoint.NewInt8Entry(shape, codes)
		out[p.Name+ScaleSuffix] = &checkpoint.Entry{DType: "F32", Shape: []int{q.N, q.K / q.Group}, F32: scales}
		switch group {
		case 0:
			group = q.Group
		case q.Group:
		default:
			group = -1
		}
	}
	return out, dtype, group
}

// quantState is StateDict(m) with m's low-precision Linear weights in
// their dtype, and the metadata recording it.
func quantState(m Model) (map[string]*checkpoint.Entry, map[string]string) {
	state := StateDict(m)
	stored, dtype, group := storedEntries(m)
	if dtype == kernels.F32 {
		return state, nil
	}
	for k, e := range stored {
		state[k] = e
	}
	meta := map[string]string{MetaDtype: dtype.String()}
	switch {
	case group > 0:
		meta[MetaGroup] = strconv.Itoa(group)
	case group < 0:
		meta[MetaGroup] = "varies"
	}
	return state, meta
}

// takeStored builds the low-precision Linear weights a quantized
// checkpoint holds (dtype d), removes their scales from state and
// installs them in m (nn.UseQuantized): LoadState then loads m's other
// parameters and consumes the weights' entries. release drops each
// entry's values once copied (checkpoint.Entry.Release).
func takeStored(m Model, state map[string]*checkpoint.Entry, d kernels.Dtype, path string, release bool) error {
	want := map[kernels.Dtype]string{kernels.BF16: "BF16", kernels.Int8: "I8"}[d]
	if want == "" {
		return fmt.Errorf("%s: metadata %s=%v: not a quantized dtype (bf16, int8)", path, MetaDtype, d)
	}
	qs := map[string]*kernels.QMatrix{}
	var names []string
	for k, e := range state {
		if e.DType == want {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		e := state[k]
		if len(e.Shape) != 2 {
			return fmt.Errorf("%s: %s is %s %v, want a Linear weight [out,in]", path, k, e.DType, e.Shape)
		}
		n, kk := e.Shape[0], e.Shape[1]
		var q *kernels.QMatrix
		if d == kernels.BF16 {
			var err error
			if q, err = kernels.NewBF16(n, kk, nil); err != nil {
				return fmt.Errorf("%s: %s: %v", path, k, err)
			}
			if err := e.BF16sInto(k, q.BF16); err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
		} else {
			sk := k + ScaleSuffix
			se := state[sk]
			if se == nil {
				return fmt.Errorf("%s: int8 weight %s has no scales %s", path, k, sk)
			}
			st, err := se.Tensor(sk)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if len(se.Shape) != 2 || se.Shape[0] != n || se.Shape[1] < 1 || kk%se.Shape[1] != 0 {
				return fmt.Errorf("%s: scales %s are %v; the weight is [%d,%d]: want [%d, %d/group]", path, sk, se.Shape, n, kk, n, kk)
			}
			codes, err := e.Int8s(k)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if q, err = kernels.NewInt8(n, kk, kk/se.Shape[1], codes, st.Data); err != nil {
				return fmt.Errorf("%s: %s: %v", path, k, err)
			}
			delete(state, sk)
			if release {
				se.Release()
			}
		}
		if release {
			e.Release()
		}
		qs[k] = q // its entry stays: LoadState consumes it (and sees the same key set as in a float32 file)
	}
	for k := range state {
		if strings.HasSuffix(k, ScaleSuffix) && qs[strings.TrimSuffix(k, ScaleSuffix)] == nil && d == kernels.Int8 {
			return fmt.Errorf("%s: scales %s without an int8 weight %s", path, k, strings.TrimSuffix(k, ScaleSuffix))
		}
	}
	if err := nn.UseQuantized(m, qs, path); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// QuantizeResult is what QuantizeFile did (slab quantize's JSON).
type QuantizeResult struct {
	Weights  string `json:"weights"`
	Out      string `json:"out"`
	Model    string `json:"model"`
	Family   string `json:"family"`
	Dtype    string `json:"dtype"`
	Group    string `json:"int8_group,omitempty"`
	Linears  int    `json:"linears"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
	// Warnings are the load's, plus a note when the model is not folded
	// (a quantized file cannot be folded).
	Warnings []string `json:"warnings,omitempty"`
}

// QuantizeFile writes the model of the slab checkpoint in (any family;
// optimizer state skipped) to out with every Linear weight stored as dtype
// (kernels.BF16 or kernels.Int8, int8 scales grouped as
// nn.QuantOptions.Group says), atomically. A file already quantized is
// refused: its float32 weights are gone. Errors about an input are
// *InputError values naming "weights", "dtype", "group" or "out".
func QuantizeFile(in, out string, dtype kernels.Dtype, group int) (*QuantizeResult, error) {
	if dtype != kernels.BF16 && dtype != kernels.Int8 {
		return nil, inputErr("dtype", "want bf16 or int8, got %v", dtype)
	}
	if dtype == kernels.BF16 && group != 0 {
		return nil, inputErr("group", "sets int8 scale groups; bf16 has none")
	}
	m, f, warns, err := Load(in)
	if err != nil {
		return nil, inputErr("weights", "%v", err)
	}
	if d, _ := nn.StoredDtype(m); d != kernels.F32 {
		return nil, inputErr("weights", "%s already holds %v weights (metadata %s=%s): quantize the float32 checkpoint it was made from", in, d, MetaDtype, f.Metadata[MetaDtype])
	}
	m.DropGrads()
	n, err := nn.QuantizeWith(m, dtype, nn.QuantOptions{Group: group})
	if err != nil {
		if group != 0 {
			return nil, inputErr("group", "%v", err)
		}
		return nil, inputErr("weights", "%s: %v", in, err)
	}
	meta := map[string]string{"quantized_from": in}
	for _, k := range []string{"tokenizer", "tokenizer_vocab", "fused_from"} { // a language model's text side; provenance
		if v, ok := f.Metadata[k]; ok {
			meta[k] = v
		}
	}
	wf, err := WeightsFile(m, meta)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.Write(out, wf); err != nil {
		return nil, inputErr("out", "%v", err)
	}
	r := &QuantizeResult{Weights: in, Out: out, Model: ConfigName(m.Config()), Family: m.Family(), Dtype: dtype.String(),
		Group: wf.Metadata[MetaGroup], Linears: n, Warnings: warns}
	if spec := m.Config().NormSpec(); spec.Foldable() {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s is not folded (norm %s): a quantized file cannot be folded; for the deploy model fold first (slab fuse), then quantize the folded file", r.Model, spec.Kind))
	}
	if st, err := os.Stat(in); err == nil {
		r.BytesIn = st.Size()
	}
	if st, err := os.Stat(out); err == nil {
		r.BytesOut = st.Size()
	}
	return r, nil
}

// WriteText prints r as slab quantize does.
func (r *QuantizeResult) WriteText(w io.Writer) {
	g := ""
	if r.Group != "" {
		g = ", int8 scale groups " + r.Group
	}
	fmt.Fprintf(w, "%s (%s): %d Linear weights stored as %s%s: %s (%.1f MB) -> %s (%.1f MB, %.2fx)\n",
		r.Model, r.Family, r.Linears, r.Dtype, g, r.Weights, float64(r.BytesIn)/1e6, r.Out, float64(r.BytesOut)/1e6, float64(r.BytesOut)/float64(max(r.BytesIn, 1)))
}

// prebuildStored builds the model of a quantized checkpoint from its
// header alone (BuildBare: no random draws, so the float32 weights are
// allocated but never written) and releases the float32 values of the
// Linear weights the file holds in low precision, before the file is
// read: the float32 Linear weights never become resident, and the peak is
// the file's bytes plus what stays float32 (embeddings, norms). It returns nil for any other file (or one whose header does
// not parse: the full read reports that).
func prebuildStored(path string) (Model, error) {
	h, err := checkpoint.ReadHeader(path)
	if err != nil {
		return nil, nil
	}
	d, err := FileDtype(h, path)
	if err != nil || d == kernels.F32 {
		return nil, nil
	}
	want := map[kernels.Dtype]string{kernels.BF16: "BF16", kernels.Int8: "I8"}[d]
	family, c, err := ConfigOf(h, path)
	if err != nil {
		return nil, err
	}
	m, err := BuildBare(family, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.DropGrads()
	released := false
	for _, p := range m.Params() {
		if e := h.Tensors[p.Name]; e != nil && e.DType == want && shapeFits(e.Shape, p.W.Shape) {
			// takeStored installs these weights, or the load fails.
			p.W = &tensor.Tensor{Shape: append([]int(nil), p.W.Shape...)}
			released = true
		}
	}
	if released {
		runtime.GC()
		debug.FreeOSMemory()
	}
	return m, nil
}

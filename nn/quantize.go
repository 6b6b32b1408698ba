package nn

import (
	"fmt"
	"slices"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Low-precision inference. Quantize stores every Linear weight of a model
// as bf16 or int8 (kernels.QMatrix) and drops its float32 values, and
// Linear.Forward then reads the low-precision copy: single rows (decoding)
// through kernels.GemvQ, several rows through kernels.GemmQ. Such a weight
// is "stored" (Stored): its Param keeps its shape but no data and no
// gradient, so the model takes the low-precision bytes in memory and no
// more; it cannot be trained, folded or quantized to another dtype (the
// float32 values are gone), and checkpoints write it in its dtype
// (models.WeightsFile). QuantizeWith{Keep: true} keeps the float32
// weights beside the copy instead, which is rebuilt when a weight's
// Version moves, like a packed weight (Prepack): benchmarks switch one
// model between dtypes that way (GetQuant, SetQuant). Training is float32
// only: a Backward through a quantized Linear panics.
//
// A Linear the module lists only through row views (RowView: SLAB-PVT's q
// and kv over one qkv) is quantized whole, as Prepack packs it: int8
// groups and scales run along a row, so the views' rows of the whole are
// what quantizing each view would give. Checkpoints store each view's
// rows under the view's name (StoredWeight, QuantizedWeights) and
// UseQuantized stacks them back.

// quantState is a Linear weight's low-precision copy and what it was
// built from.
type quantState struct {
	dtype kernels.Dtype
	q     *kernels.QMatrix
	ver   uint64   // Param.Version() when quantized
	data  *float32 // &W.Data[0] when quantized
	// stored: the float32 weight was dropped and q is the weight; src
	// names where it was loaded from ("" when quantized in memory).
	stored bool
	src    string
}

// QuantOptions says how QuantizeWith stores the weights.
type QuantOptions struct {
	// Group is the int8 scale group: 0 picks one per Linear
	// (kernels.Int8Group: 64, else 32, else 128, else the whole row), -1
	// one scale per output channel (the whole row), n > 0 groups of n
	// weights, which must divide every quantized Linear's In.
	Group int
	// Keep keeps the float32 weights beside the low-precision copies
	// (which are then rebuilt when a weight changes): Quantize(m, F32)
	// or SetQuant return the model to float32.
	Keep bool
}

// StoredError is the error of quantizing a model whose Linear weights are
// already held only in low precision (a quantized checkpoint, or an
// earlier Quantize): their float32 values are gone.
type StoredError struct {
	Have, Want kernels.Dtype
	Source     string // the file they were loaded from, if any
}

func (e *StoredError) Error() string {
	from := "quantized in memory"
	if e.Source != "" {
		from = "loaded from " + e.Source
	}
	return fmt.Sprintf("the Linear weights are stored as %v (%s) with no float32 values left to store as %v: use %v, or quantize the float32 checkpoint", e.Have, from, e.Want, e.Have)
}

// Quantize makes every Linear among m's parameters compute with its
// weight stored as dtype (kernels.BF16 or kernels.Int8, the int8 group
// chosen by kernels.Int8Group) and drops the float32 weights (Stored). It
// returns the number of Linears quantized (a stacked Linear once per row
// view the module lists), or an error naming the first
// weight that cannot be stored so (nothing is changed then). A model
// already stored in dtype is left as it is; in another dtype (or F32) the
// error is a *StoredError. kernels.F32 returns the Linears of a model
// quantized with Keep to float32.
func Quantize(m Module, dtype kernels.Dtype) (int, error) {
	return QuantizeWith(m, dtype, QuantOptions{})
}

// QuantizeWith is Quantize with the int8 group and the float32 weights'
// fate chosen by o.
func QuantizeWith(m Module, dtype kernels.Dtype, o QuantOptions) (int, error) {
	var lins []*Param
	for _, p := range linTargets(m) {
		if len(p.W.Data) > 0 || Stored(p) {
			lins = append(lins, p)
		}
	}
	count := listed(m, lins)
	for _, p := range lins {
		if s := p.lin.qs; s != nil && s.stored {
			if s.dtype == dtype {
				return count, nil
			}
			return 0, &StoredError{Have: s.dtype, Want: dtype, Source: s.src}
		}
	}
	if dtype == kernels.F32 {
		for _, p := range lins {
			p.lin.qs = nil
		}
		return count, nil
	}
	if dtype != kernels.BF16 && dtype != kernels.Int8 {
		return 0, fmt.Errorf("nn.Quantize: cannot store weights as %v", dtype)
	}
	if o.Group < -1 {
		return 0, fmt.Errorf("nn.Quantize: int8 group %d (want 0 for automatic, -1 for one scale per output channel, or a group size)", o.Group)
	}
	qs := make([]*quantState, len(lins))
	for i, p := range lins {
		s := &quantState{dtype: dtype}
		if err := s.buildGroup(p, o.Group); err != nil {
			return 0, err
		}
		qs[i] = s
	}
	for i, p := range lins {
		p.lin.qs = qs[i]
		if !o.Keep {
			drop(p)
		}
	}
	dropViews(m)
	return count, nil
}

// listed is how many of m's parameters are weights of the Linears lins
// (a stacked Linear counts once per row view m lists): the Linears of the
// official model, as a checkpoint names them.
func listed(m Module, lins []*Param) int {
	in := map[*Param]bool{}
	for _, p := range lins {
		in[p] = true
	}
	n := 0
	for _, p := range m.Params() {
		if in[p.packTarget()] {
			n++
		}
	}
	return n
}

// linTargets returns the Linear weights m computes with, once each: its
// Linears' weight parameters and the Linears its row views stand for.
func linTargets(m Module) []*Param {
	var out []*Param
	seen := map[*Param]bool{}
	for _, p := range m.Params() {
		if t := p.packTarget(); t.lin != nil && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// dropViews gives every row view of a Stored weight among m's parameters
// its shape and no data, as drop gives the weight (the views' slices
// would keep the float32 weight alive and read stale values).
func dropViews(m Module) {
	for _, p := range m.Params() {
		if p.of != nil && p.W.Data != nil && Stored(p) {
			p.W = &tensor.Tensor{Shape: append([]int(nil), p.W.Shape...)}
			p.G = nil
		}
	}
}

// rowsOf is rows [r0, r0+n) of q, sharing its storage.
func rowsOf(q *kernels.QMatrix, r0, n int) *kernels.QMatrix {
	v := &kernels.QMatrix{Dtype: q.Dtype, N: n, K: q.K, Group: q.Group}
	if q.Dtype == kernels.BF16 {
		v.BF16 = q.BF16[r0*q.K : (r0+n)*q.K : (r0+n)*q.K]
	} else {
		rb := q.RowBytes()
		v.Q = q.Q[r0*rb : (r0+n)*rb : (r0+n)*rb]
	}
	return v
}

// drop makes p's low-precision copy its only value.
func drop(p *Param) {
	p.lin.qs.stored = true
	p.lin.qs.data = nil // a pointer into W.Data would keep it alive
	p.lin.on, p.lin.valid, p.lin.pb = false, false, kernels.PackedB{}
	// A new tensor rather than nil Data: whoever else holds the old one
	// (a tied weight) keeps its values.
	p.W = &tensor.Tensor{Shape: append([]int(nil), p.W.Shape...)}
	p.G = nil
}

// Stored reports whether p is a Linear weight held only in low precision
// (its W has its shape but no data): state dicts and loaders skip its
// float32 form.
// A row view of a stored weight is stored too.
func Stored(p *Param) bool {
	t := p.packTarget()
	return t.lin != nil && t.lin.qs != nil && t.lin.qs.stored
}

// StoredWeight returns p's low-precision value when Stored(p), else nil:
// for a row view, its rows of the viewed weight's.
func StoredWeight(p *Param) *kernels.QMatrix {
	if !Stored(p) {
		return nil
	}
	if p.of != nil {
		return rowsOf(p.of.lin.qs.q, p.ofRow, p.W.Shape[0])
	}
	return p.lin.qs.q
}

// StoredDtype is the dtype of m's Stored Linear weights (kernels.F32 when
// there are none) and the file they were loaded from ("" if quantized in
// memory).
func StoredDtype(m Module) (kernels.Dtype, string) {
	for _, p := range linTargets(m) {
		if Stored(p) {
			return p.lin.qs.dtype, p.lin.qs.src
		}
	}
	return kernels.F32, ""
}

// buildGroup quantizes w with the int8 group g of QuantOptions.Group.
func (s *quantState) buildGroup(w *Param, g int) error {
	if s.dtype != kernels.Int8 || g == 0 {
		return s.build(w)
	}
	if len(w.W.Shape) != 2 {
		return fmt.Errorf("nn.Quantize: %s has shape %v, want [out,in]", w.Name, w.W.Shape)
	}
	n, k := w.W.Shape[0], w.W.Shape[1]
	if g == -1 {
		g = k
	}
	if k%g != 0 {
		return fmt.Errorf("nn.Quantize: %s has %d inputs, which groups of %d do not divide", w.Name, k, g)
	}
	q, err := kernels.QuantizeInt8(w.W.Data, n, k, g)
	if err != nil {
		return fmt.Errorf("nn.Quantize: %s: %w", w.Name, err)
	}
	s.q, s.ver, s.data = q, w.Version(), &w.W.Data[0]
	return nil
}

// build quantizes w (a Linear weight [out, in]).
func (s *quantState) build(w *Param) error {
	if len(w.W.Shape) != 2 {
		return fmt.Errorf("nn.Quantize: %s has shape %v, want [out,in]", w.Name, w.W.Shape)
	}
	q, err := kernels.Quantize(s.dtype, w.W.Data, w.W.Shape[0], w.W.Shape[1])
	if err != nil {
		return fmt.Errorf("nn.Quantize: %s: %w", w.Name, err)
	}
	s.q, s.ver, s.data = q, w.Version(), &w.W.Data[0]
	return nil
}

// get returns the low-precision weight, rebuilt when W may have changed.
func (s *quantState) get(w *Param) *kernels.QMatrix {
	if s.stored {
		return s.q
	}
	if s.ver != w.Version() || s.data != &w.W.Data[0] {
		if err := s.build(w); err != nil {
			panic(err.Error())
		}
	}
	return s.q
}

// Dtype reports how the Linear's weight is stored for Forward.
func (l *Linear) Dtype() kernels.Dtype {
	if s := l.quant(); s != nil {
		return s.dtype
	}
	return kernels.F32
}

// QWeight returns the low-precision weight Forward reads, or nil for a
// float32 Linear.
func (l *Linear) QWeight() *kernels.QMatrix {
	if s := l.quant(); s != nil {
		return s.get(l.Weight)
	}
	return nil
}

func (l *Linear) quant() *quantState {
	if l.Weight.lin == nil {
		return nil
	}
	return l.Weight.lin.qs
}

// forwardQ is Forward with the low-precision weight.
func (l *Linear) forwardQ(x *tensor.Tensor, s *quantState) *tensor.Tensor {
	y := l.output(x)
	var ep kernels.Epilogue
	if l.Bias != nil {
		ep.Bias = l.Bias.W.Data
	}
	l.gemmQ(x.Rows(), x.Data, s.get(l.Weight), y.Data, ep)
	return y
}

// gemm sets y = epilogue(x W^T) for rows rows of x (row stride In; y's
// Out) through the weight as Forward reads it (low-precision when
// quantized, prepacked when Prepack is on): for fused inference paths that
// call the GEMM themselves.
func (l *Linear) gemm(rows int, x, y []float32, ep kernels.Epilogue) {
	if s := l.quant(); s != nil {
		l.gemmQ(rows, x, s.get(l.Weight), y, ep)
		return
	}
	if p := l.Weight.lin; p != nil && p.on && rows > 1 {
		kernels.GemmPacked(rows, x, l.In, p.get(l.Weight, l.In, l.Out), y, l.Out, ep)
		return
	}
	kernels.GemmEpilogue(false, true, rows, l.Out, l.In, x, l.In, l.Weight.W.Data, l.In, y, l.Out, ep)
}

// decodePackRows is the fewest rows for which a decode Linear (MarkDecode)
// runs the bf16/int8 GEMMs, which keep a packed copy of the weight: an
// evaluation batch, not a prompt.
const decodePackRows = 256

// gemmQ runs the low-precision GEMM y = epilogue(x q^T) for rows rows.
func (l *Linear) gemmQ(rows int, x []float32, q *kernels.QMatrix, y []float32, ep kernels.Epilogue) {
	if l.Weight.lin.decode && rows < decodePackRows {
		kernels.GemmQStrips(rows, x, l.In, q, y, l.Out, ep)
		return
	}
	kernels.GemmQ(rows, x, l.In, q, y, l.Out, ep)
}

// MarkDecode marks every Linear among m's parameters as read mostly one
// row at a time (a language model decoding): once quantized, its GEMMs of
// fewer than 256 rows (prompts) dequantize strips of the stored weight
// instead of running the bf16/int8 GEMMs, whose packed copy of the weight
// would double the model's resident size after its first prompt (lm_60m
// in bf16: 160 -> 244 MB, level with float32). Evaluation batches still
// take the fast GEMMs. Results differ only in the GEMMs' accuracy
// contract (kernels.GemmQ).
func MarkDecode(m Module) {
	for _, p := range linTargets(m) {
		p.lin.decode = true
	}
}

// WeightBytes sums the bytes of the Linear weights of m as Forward reads
// them (low-precision copies where quantized, float32 elsewhere): the
// weight traffic of a decode step, apart from the embedding row.
func WeightBytes(m Module) int {
	n := 0
	for _, p := range linTargets(m) {
		if s := p.lin.qs; s != nil {
			n += s.get(p).Bytes()
		} else {
			n += 4 * len(p.W.Data)
		}
	}
	return n
}

// QuantSet is the low-precision state of a module's Linears as Quantize
// left it (one entry per Linear weight, in Params order; nil for float32).
// With GetQuant and SetQuant a benchmark switches one model between
// dtypes quantized once each, instead of holding a model per dtype.
type QuantSet []*quantState

// GetQuant returns m's current low-precision state.
func GetQuant(m Module) QuantSet {
	var s QuantSet
	for _, p := range linTargets(m) {
		s = append(s, p.lin.qs)
	}
	return s
}

// SetQuant restores a state GetQuant returned for the same module.
func SetQuant(m Module, s QuantSet) {
	for i, p := range linTargets(m) {
		if i < len(s) && !Stored(p) { // a stored weight has no float32 to return to
			p.lin.qs = s[i]
		}
	}
}

// QuantizedWeights returns the low-precision weight of every quantized
// Linear of m by parameter name (for saving a quantized checkpoint); a
// row view gets its rows of the viewed weight's.
func QuantizedWeights(m Module) map[string]*kernels.QMatrix {
	qs := map[string]*kernels.QMatrix{}
	for _, p := range m.Params() {
		t := p.packTarget()
		if t.lin == nil || t.lin.qs == nil {
			continue
		}
		if q := t.lin.qs.get(t); p.of != nil {
			qs[p.Name] = rowsOf(q, p.ofRow, p.W.Shape[0])
		} else {
			qs[p.Name] = q
		}
	}
	return qs
}

// UseQuantized makes the Linears of m whose weight names are in qs hold
// those low-precision weights as their only value (Stored; their float32
// weights are dropped), as a quantized checkpoint loads; src names the
// file in errors. Row views' weights are stacked into the Linear they
// view, which must then be covered whole. It returns an error naming a
// weight that is not a Linear's or whose shape does not match (nothing is
// changed then).
func UseQuantized(m Module, qs map[string]*kernels.QMatrix, src string) error {
	byName := map[string]*Param{}
	for _, p := range m.Params() {
		byName[p.Name] = p
	}
	install := map[*Param]*kernels.QMatrix{}
	views := map[*Param][]*Param{}
	for name, q := range qs {
		p := byName[name]
		if p == nil || p.packTarget().lin == nil {
			return fmt.Errorf("nn.UseQuantized: %s is not the weight of a Linear", name)
		}
		if len(p.W.Shape) != 2 || p.W.Shape[0] != q.N || p.W.Shape[1] != q.K {
			return fmt.Errorf("nn.UseQuantized: %s is %v, quantized weight is [%d,%d]", name, p.W.Shape, q.N, q.K)
		}
		if q.Dtype != kernels.BF16 && q.Dtype != kernels.Int8 {
			return fmt.Errorf("nn.UseQuantized: %s: dtype %v", name, q.Dtype)
		}
		if p.of == nil {
			install[p] = q
		} else {
			views[p.of] = append(views[p.of], p)
		}
	}
	for t, vs := range views {
		q, err := stackRows(t, vs, qs)
		if err != nil {
			return err
		}
		install[t] = q
	}
	for p, q := range install {
		p.lin.qs = &quantState{dtype: q.Dtype, q: q, src: src}
		drop(p)
	}
	dropViews(m)
	return nil
}

// stackRows builds t's low-precision weight from its row views' entries
// in qs, which must cover its rows once each, in one dtype and int8
// group.
func stackRows(t *Param, vs []*Param, qs map[string]*kernels.QMatrix) (*kernels.QMatrix, error) {
	slices.SortFunc(vs, func(a, b *Param) int { return a.ofRow - b.ofRow })
	first := qs[vs[0].Name]
	out := &kernels.QMatrix{Dtype: first.Dtype, N: t.W.Shape[0], K: first.K, Group: first.Group}
	row := 0
	for _, v := range vs {
		q := qs[v.Name]
		if v.ofRow != row {
			return nil, fmt.Errorf("nn.UseQuantized: %s covers rows %d.. of its Linear, but rows %d..%d have no quantized weight", v.Name, v.ofRow, row, v.ofRow-1)
		}
		if q.Dtype != out.Dtype || q.Group != out.Group {
			return nil, fmt.Errorf("nn.UseQuantized: %s is %v (group %d), %s is %v (group %d): one Linear stores one way", v.Name, q.Dtype, q.Group, vs[0].Name, out.Dtype, out.Group)
		}
		out.BF16 = append(out.BF16, q.BF16...)
		out.Q = append(out.Q, q.Q...)
		row += q.N
	}
	if row != out.N {
		return nil, fmt.Errorf("nn.UseQuantized: rows %d..%d of the Linear %s views have no quantized weight", row, out.N-1, vs[0].Name)
	}
	return out, nil
}

// QuantSavedBytes is how many fewer bytes a forward reads through m's
// quantized Linears than through their float32 weights: a float32
// model's per-token weight traffic minus this is the quantized model's.
func QuantSavedBytes(m Module) int {
	n := 0
	for _, p := range linTargets(m) {
		if p.lin.qs != nil {
			q := p.lin.qs.get(p)
			n += 4*q.N*q.K - q.Bytes()
		}
	}
	return n
}

// NeedFloat32 returns an error when some Linear weights of m are held in
// low precision only (Stored), for operations that rewrite the float32
// weights (folding, training).
func NeedFloat32(m Module) error {
	d, src := StoredDtype(m)
	if d == kernels.F32 {
		return nil
	}
	if src == "" {
		return fmt.Errorf("the Linear weights are stored as %v only (quantized in memory), with no float32 values", d)
	}
	return fmt.Errorf("the Linear weights of %s are stored as %v only (a quantized checkpoint), with no float32 values", src, d)
}

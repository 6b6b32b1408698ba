package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// AdaptiveSoftmax is the adaptive softmax output of Grave et al. (2017)
// as torch.nn.AdaptiveLogSoftmaxWithLoss computes it, with fairseq's
// weight tying to an AdaptiveInput as an option (the transformer_lm_wiki103
// configuration of Baevski & Auli 2019).
//
// The vocabulary, sorted by frequency, is cut at c1 < c2 < ... < V: the
// head scores the shortlist [0, c1) and one entry per tail cluster
// [c_k, c_{k+1}); cluster k (0-based) projects the input to
// In/Factor^(k+1) dimensions and scores its words from there:
//
//	log p(w) = log softmax(head(x))[w]                           w < c1
//	log p(w) = log softmax(head(x))[c1+k]
//	         + log softmax(tail_k(x))[w - c_k]                   w in cluster k
//
// Untied (torch's parameter names): NAME.head.weight [c1+K, In] and, with
// headBias, NAME.head.bias; NAME.tail.{k}.0.weight [d_k, In] and
// NAME.tail.{k}.1.weight [c_{k+1}-c_k, d_k].
//
// Tied (NewTiedAdaptiveSoftmax, fairseq's tie_adaptive_weights): the
// output matrix of cluster k is the embedding of input band k+1, the
// shortlist rows of the head are band 0's embedding, reached through
// NAME.head.word_proj.0.weight [d_0, In] when In != d_0, and the cluster
// entries of the head are NAME.head.class_proj.weight [K, In]. With
// tieProj (tie_adaptive_proj) cluster k's projection is band k+1's input
// projection used transposed (x P with P [In, d]); otherwise it is its own
// NAME.tail.{k}.0.weight. Shared tensors are the AdaptiveInput's: Params
// lists only what the softmax owns, and both layers accumulate into the
// shared gradients.
//
// Forward computes the head for every row but a cluster only for the rows
// whose target lies in it, so a training step costs about one shortlist
// softmax, not a full one. Every matrix product is a GEMM; the per-row
// softmaxes run split over the worker pool and each row's result depends
// only on that row, and gradients scattered back to rows are added in row
// order: results do not depend on the thread count.
type AdaptiveSoftmax struct {
	In, Vocab int
	Cutoffs   []int // c1, ..., V
	// TailDropout is the dropout rate inside each cluster (ForwardTrain);
	// fairseq's wiki103 configuration uses 0.2.
	TailDropout float32

	Head, HeadBias               *Param // untied head
	WordEmb, WordProj, ClassProj *Param // tied head; WordProj nil when In == d_0
	Clusters                     []*AdaptiveCluster

	own []*Param

	x       *tensor.Tensor // the input of the last Forward (a reference)
	dropped bool           // the last Forward applied TailDropout
	rows    int
	done    bool           // Backward consumed the probabilities
	head    *tensor.Tensor // head logits, then their softmax [rows, c1+K]
	xw, dxw *tensor.Tensor // tied head with WordProj: x WordProj^T and its gradient
	dx      *tensor.Tensor
	gather  []int32   // head column of each row's target
	lp      []float64 // log p(target) of each row
	headLP  []float64
	// LogProb's own buffers, so that it never disturbs what Backward needs.
	full, scratch *tensor.Tensor // output [rows, V]; softmax rows
	lpHead, lpXW  *tensor.Tensor

	work      asmRows
	workFn    func(lo, hi int)
	fullShape []int
	dxShape   []int
}

// AdaptiveCluster is tail cluster k of an AdaptiveSoftmax: words [Lo, Hi)
// scored as (x Proj^T) Out^T, or (x Proj) Out^T when ProjT (Proj is then
// the tied input projection [In, Dim]).
type AdaptiveCluster struct {
	Lo, Hi, Dim int
	Proj, Out   *Param
	ProjT       bool

	rows     []int32 // rows of the last Forward whose target is here
	tgt      []int32 // their targets relative to Lo
	lp       []float64
	xs, h, z *tensor.Tensor // gathered inputs [n, In], projections [n, Dim] (after dropout), logits then softmax [n, Hi-Lo]
	mask     *tensor.Tensor // dropout factors of h: 0 or 1/(1-rate)
	dh, dxs  *tensor.Tensor
	hAll     *tensor.Tensor // LogProb's projections of every row
}

// NewAdaptiveSoftmax returns a zero untied adaptive softmax, as
// torch.nn.AdaptiveLogSoftmaxWithLoss(in, vocab, cutoffs, div_value =
// factor, head_bias = headBias). cutoffs may end with vocab or not.
func NewAdaptiveSoftmax(name string, in, vocab int, cutoffs []int, factor float64, headBias bool) (*AdaptiveSoftmax, error) {
	c, err := AdaptiveCutoffs(vocab, cutoffs)
	if err != nil {
		return nil, fmt.Errorf("adaptive softmax %s: %w", name, err)
	}
	if factor < 1 || in < 1 {
		return nil, fmt.Errorf("adaptive softmax %s: factor %g and input width %d, want factor >= 1 and width >= 1", name, factor, in)
	}
	s := &AdaptiveSoftmax{In: in, Vocab: vocab, Cutoffs: c}
	hs := c[0] + len(c) - 1
	s.Head = NewParam(name+".head.weight", false, hs, in)
	s.own = append(s.own, s.Head)
	if headBias {
		s.HeadBias = NewParam(name+".head.bias", true, hs)
		s.own = append(s.own, s.HeadBias)
	}
	for k := 0; k+1 < len(c); k++ {
		d := AdaptiveDim(in, factor, k+1)
		if d < 1 {
			return nil, fmt.Errorf("adaptive softmax %s: cluster %d has width %d/%g^%d < 1", name, k, in, factor, k+1)
		}
		pre := fmt.Sprintf("%s.tail.%d.", name, k)
		cl := &AdaptiveCluster{Lo: c[k], Hi: c[k+1], Dim: d,
			Proj: NewParam(pre+"0.weight", false, d, in),
			Out:  NewParam(pre+"1.weight", false, c[k+1]-c[k], d)}
		s.Clusters = append(s.Clusters, cl)
		s.own = append(s.own, cl.Proj, cl.Out)
	}
	return s, nil
}

// NewTiedAdaptiveSoftmax returns an adaptive softmax over input's
// vocabulary and bands whose output matrices are input's embeddings and,
// with tieProj, whose cluster projections are input's band projections
// (fairseq's tie_adaptive_weights and tie_adaptive_proj). in is the width
// of the softmax's input; tieProj needs it equal to input.Dim.
func NewTiedAdaptiveSoftmax(name string, in int, input *AdaptiveInput, tieProj bool) (*AdaptiveSoftmax, error) {
	if in < 1 {
		return nil, fmt.Errorf("adaptive softmax %s: input width %d", name, in)
	}
	if tieProj && in != input.Dim {
		return nil, fmt.Errorf("adaptive softmax %s: tied projections need the input width %d to equal the adaptive input's width %d", name, in, input.Dim)
	}
	bands := input.Bands
	s := &AdaptiveSoftmax{In: in, Vocab: input.Vocab}
	for _, b := range bands {
		s.Cutoffs = append(s.Cutoffs, b.Hi)
	}
	b0 := bands[0]
	s.WordEmb = b0.Emb
	if in != b0.Dim {
		s.WordProj = NewParam(name+".head.word_proj.0.weight", false, b0.Dim, in)
		s.own = append(s.own, s.WordProj)
	}
	s.ClassProj = NewParam(name+".head.class_proj.weight", false, len(bands)-1, in)
	s.own = append(s.own, s.ClassProj)
	for k, b := range bands[1:] {
		cl := &AdaptiveCluster{Lo: b.Lo, Hi: b.Hi, Dim: b.Dim, Out: b.Emb}
		if tieProj {
			cl.Proj, cl.ProjT = b.Proj, true
		} else {
			cl.Proj = NewParam(fmt.Sprintf("%s.tail.%d.0.weight", name, k), false, b.Dim, in)
			s.own = append(s.own, cl.Proj)
		}
		s.Clusters = append(s.Clusters, cl)
	}
	return s, nil
}

// Init draws fairseq's initial values for the owned weights
// (Xavier-uniform; the head bias, if any, zero). Tied tensors keep the
// AdaptiveInput's values, as in fairseq.
func (s *AdaptiveSoftmax) Init(rng *rand.Rand) {
	if rng == nil {
		return // a bare build (InitRand)
	}
	for _, p := range s.own {
		if p == s.HeadBias {
			p.W.Zero()
		} else {
			XavierUniform(p.W, rng)
		}
		p.MarkChanged()
	}
}

// Params returns the parameters the softmax owns (shared tensors belong
// to the AdaptiveInput).
func (s *AdaptiveSoftmax) Params() []*Param { return s.own }

// Buffers is empty.
func (s *AdaptiveSoftmax) Buffers() []*Buffer { return nil }

// headSize is c1 + the number of clusters.
func (s *AdaptiveSoftmax) headSize() int { return s.Cutoffs[0] + len(s.Clusters) }

// headLogits writes the head scores of x [rows, In] into *dst, using
// *xwBuf for the tied head's word projection.
func (s *AdaptiveSoftmax) headLogits(x []float32, rows int, dst, xwBuf **tensor.Tensor) []float32 {
	hs, c1, in := s.headSize(), s.Cutoffs[0], s.In
	h := tensor.Ensure(dst, rows, hs).Data
	if s.Head != nil {
		var ep kernels.Epilogue
		if s.HeadBias != nil {
			ep.Bias = s.HeadBias.W.Data
		}
		kernels.GemmEpilogue(false, true, rows, hs, in, x, in, s.Head.W.Data, in, h, hs, ep)
		return h
	}
	xw, d0 := x, in
	if s.WordProj != nil {
		d0 = s.WordProj.W.Dim(0)
		xw = tensor.Ensure(xwBuf, rows, d0).Data
		kernels.GemmEpilogue(false, true, rows, d0, in, x, in, s.WordProj.W.Data, in, xw, d0, kernels.Epilogue{})
	}
	kernels.GemmEpilogue(false, true, rows, c1, d0, xw, d0, s.WordEmb.W.Data, d0, h, hs, kernels.Epilogue{})
	if len(s.Clusters) > 0 {
		kernels.GemmEpilogue(false, true, rows, len(s.Clusters), in, x, in, s.ClassProj.W.Data, in, h[c1:], hs, kernels.Epilogue{})
	}
	return h
}

// project writes cluster c's projection of the rows of x [n, In] into h.
func (s *AdaptiveSoftmax) project(c *AdaptiveCluster, x []float32, n int, h []float32) {
	in, d := s.In, c.Dim
	if c.ProjT {
		kernels.GemmEpilogue(false, false, n, d, in, x, in, c.Proj.W.Data, d, h, d, kernels.Epilogue{})
	} else {
		kernels.GemmEpilogue(false, true, n, d, in, x, in, c.Proj.W.Data, in, h, d, kernels.Epilogue{})
	}
}

// Forward returns the mean negative log-likelihood of targets under x
// [..., In] (one target per row) and keeps what Backward needs; the
// log-probability of every row's target is TargetLogProbs. A target
// outside the vocabulary is an error naming it. It is the evaluation
// pass (no dropout); ForwardTrain is the training one.
func (s *AdaptiveSoftmax) Forward(x *tensor.Tensor, targets []int) (float64, error) {
	return s.forward(x, targets, nil)
}

// ForwardTrain is Forward with TailDropout applied between each cluster's
// projection and its output layer (fairseq's adaptive_softmax_dropout),
// one rng draw per element of the projected rows, cluster by cluster.
func (s *AdaptiveSoftmax) ForwardTrain(x *tensor.Tensor, targets []int, rng *rand.Rand) (float64, error) {
	if s.TailDropout <= 0 {
		rng = nil
	}
	return s.forward(x, targets, rng)
}

func (s *AdaptiveSoftmax) forward(x *tensor.Tensor, targets []int, rng *rand.Rand) (float64, error) {
	if x.Cols() != s.In {
		return 0, fmt.Errorf("adaptive softmax: input %v, want last dimension %d", x.Shape, s.In)
	}
	rows := x.Rows()
	if len(targets) != rows {
		return 0, fmt.Errorf("adaptive softmax: %d targets for input %v (%d rows)", len(targets), x.Shape, rows)
	}
	c1 := s.Cutoffs[0]
	if cap(s.gather) < rows {
		s.gather, s.lp, s.headLP = make([]int32, rows), make([]float64, rows), make([]float64, rows)
	}
	s.gather, s.lp, s.headLP = s.gather[:rows], s.lp[:rows], s.headLP[:rows]
	for _, c := range s.Clusters {
		c.rows, c.tgt = c.rows[:0], c.tgt[:0]
	}
	for r, t := range targets {
		if t < 0 || t >= s.Vocab {
			return 0, fmt.Errorf("adaptive softmax: target %d of row %d outside [0,%d)", t, r, s.Vocab)
		}
		if t < c1 {
			s.gather[r] = int32(t)
			continue
		}
		k := 0
		for t >= s.Clusters[k].Hi {
			k++
		}
		c := s.Clusters[k]
		s.gather[r] = int32(c1 + k)
		c.rows = append(c.rows, int32(r))
		c.tgt = append(c.tgt, int32(t-c.Lo))
	}
	s.x, s.rows, s.done, s.dropped = x, rows, false, rng != nil
	if rows == 0 {
		return 0, nil
	}
	hs := s.headSize()
	h := s.headLogits(x.Data, rows, &s.head, &s.xw)
	s.softmaxTargets(h, rows, hs, s.gather, s.headLP)
	copy(s.lp, s.headLP)
	in := s.In
	for _, c := range s.Clusters {
		n, d, size := len(c.rows), c.Dim, c.Hi-c.Lo
		if n == 0 {
			continue
		}
		xs := tensor.Ensure(&c.xs, n, in)
		for j, r := range c.rows {
			copy(xs.Data[j*in:(j+1)*in], x.Data[int(r)*in:int(r+1)*in])
		}
		hh := tensor.Ensure(&c.h, n, d)
		s.project(c, xs.Data, n, hh.Data)
		if rng != nil {
			dropoutMask(tensor.Ensure(&c.mask, n, d).Data, s.TailDropout, rng)
			kernels.Mul(hh.Data, hh.Data, c.mask.Data)
		}
		z := tensor.Ensure(&c.z, n, size)
		kernels.GemmEpilogue(false, true, n, size, d, hh.Data, d, c.Out.W.Data, d, z.Data, size, kernels.Epilogue{})
		if cap(c.lp) < n {
			c.lp = make([]float64, n, 2*n)
		}
		c.lp = c.lp[:n]
		s.softmaxTargets(z.Data, n, size, c.tgt, c.lp)
		for j, r := range c.rows {
			s.lp[r] += c.lp[j]
		}
	}
	var total float64
	for _, v := range s.lp {
		total += v
	}
	return -total / float64(rows), nil
}

// TargetLogProbs returns log p(target) of every row of the last Forward
// (torch's output), valid until the next Forward.
func (s *AdaptiveSoftmax) TargetLogProbs() []float64 { return s.lp }

// softmaxTargets replaces each of rows rows of z (cols wide) by its
// softmax and writes the log-probability of column tgt[r] into lp[r].
func (s *AdaptiveSoftmax) softmaxTargets(z []float32, rows, cols int, tgt []int32, lp []float64) {
	s.work = asmRows{x: z, cols: cols, tgt: tgt, lp: lp}
	s.runRows(rows)
}

// runRows runs s.work over rows, split over the worker pool.
func (s *AdaptiveSoftmax) runRows(rows int) {
	if s.workFn == nil {
		s.workFn = s.rowsRange
	}
	kernels.ParallelFor(rows, max(1, (1<<14)/max(s.work.cols, 1)), s.workFn)
	s.work = asmRows{}
}

func (s *AdaptiveSoftmax) rowsRange(lo, hi int) { s.work.run(lo, hi) }

// asmRows is a batch of per-row softmaxes. With tgt set, each row of x is
// replaced by its softmax and lp[r] = log p(tgt[r]) (training and
// evaluation). Otherwise each row of x (ld apart) is replaced by its
// log-softmax plus add[r*addLd] (the cluster's log-probability in the
// head), through scratch rows (LogProb).
type asmRows struct {
	x        []float32
	ld, cols int
	tgt      []int32
	lp       []float64
	scratch  []float32
	add      []float32
	addLd    int
}

// run processes rows [lo, hi). The log-sum-exp of a row follows from its
// largest probability p_q as x_q - log p_q, which never underflows.
func (w *asmRows) run(lo, hi int) {
	k := w.cols
	if w.tgt != nil {
		for r := lo; r < hi; r++ {
			xr := w.x[r*k : r*k+k]
			xt := float64(xr[w.tgt[r]])
			q := argmax(xr)
			xq := float64(xr[q])
			kernels.SoftmaxRows(xr, xr, 1, k, k)
			w.lp[r] = xt - (xq - math.Log(float64(xr[q])))
		}
		return
	}
	for r := lo; r < hi; r++ {
		xr := w.x[r*w.ld : r*w.ld+k]
		pr := w.scratch[r*k : r*k+k]
		kernels.SoftmaxRows(pr, xr, 1, k, k)
		q := argmax(xr)
		shift := float32(float64(xr[q]) - math.Log(float64(pr[q])))
		if w.add != nil {
			shift -= w.add[r*w.addLd]
		}
		for j := range xr {
			xr[j] -= shift
		}
	}
}

// dropoutMask fills m with 0 (probability rate) or 1/(1-rate), one rng
// draw per element in order, as Dropout does.
func dropoutMask(m []float32, rate float32, rng *rand.Rand) {
	keep := 1 - float64(rate)
	var v float32
	if keep > 0 {
		v = float32(1 / keep)
	}
	for i := range m {
		if rng.Float64() < keep {
			m[i] = v
		} else {
			m[i] = 0
		}
	}
}

// argmax is the index of the first largest value of x (len >= 1).
func argmax(x []float32) int {
	q, m := 0, x[0]
	for j, v := range x {
		if v > m {
			q, m = j, v
		}
	}
	return q
}

// Backward returns d(mean NLL)/dx for the last Forward and accumulates
// every parameter gradient (shared ones included). It uses the
// probabilities Forward kept, in place, so it runs once per Forward.
func (s *AdaptiveSoftmax) Backward() *tensor.Tensor {
	if s.x == nil || s.done {
		panic("nn.AdaptiveSoftmax: Backward without a Forward")
	}
	s.done = true
	x, rows := s.x, s.rows
	in, hs, c1 := s.In, s.headSize(), s.Cutoffs[0]
	s.dxShape = append(s.dxShape[:0], x.Shape...)
	dx := tensor.Ensure(&s.dx, s.dxShape...)
	if rows == 0 {
		return dx
	}
	inv := 1 / float32(rows)
	// dhead = (softmax - onehot) / rows, in place.
	dh := s.head.Data
	kernels.Scale(dh, inv, dh)
	for r, g := range s.gather {
		dh[r*hs+int(g)] -= inv
	}
	acc := kernels.Epilogue{Accumulate: true}
	if s.Head != nil {
		kernels.GemmEpilogue(true, false, hs, in, rows, dh, hs, x.Data, in, s.Head.G.Data, in, acc)
		if s.HeadBias != nil {
			kernels.ColSums(s.HeadBias.G.Data, dh, rows, hs)
		}
		kernels.Gemm(false, false, rows, in, hs, 1, dh, hs, s.Head.W.Data, in, 0, dx.Data, in)
	} else {
		xw, d0 := x.Data, in
		if s.WordProj != nil {
			d0 = s.WordProj.W.Dim(0)
			xw = s.xw.Data
		}
		kernels.GemmEpilogue(true, false, c1, d0, rows, dh, hs, xw, d0, s.WordEmb.G.Data, d0, acc)
		if s.WordProj != nil {
			dxw := tensor.Ensure(&s.dxw, rows, d0)
			kernels.Gemm(false, false, rows, d0, c1, 1, dh, hs, s.WordEmb.W.Data, d0, 0, dxw.Data, d0)
			kernels.GemmEpilogue(true, false, d0, in, rows, dxw.Data, d0, x.Data, in, s.WordProj.G.Data, in, acc)
			kernels.Gemm(false, false, rows, in, d0, 1, dxw.Data, d0, s.WordProj.W.Data, in, 0, dx.Data, in)
		} else {
			kernels.Gemm(false, false, rows, in, c1, 1, dh, hs, s.WordEmb.W.Data, in, 0, dx.Data, in)
		}
		if k := len(s.Clusters); k > 0 {
			kernels.GemmEpilogue(true, false, k, in, rows, dh[c1:], hs, x.Data, in, s.ClassProj.G.Data, in, acc)
			kernels.Gemm(false, false, rows, in, k, 1, dh[c1:], hs, s.ClassProj.W.Data, in, 1, dx.Data, in)
		}
	}
	for _, c := range s.Clusters {
		n, d, size := len(c.rows), c.Dim, c.Hi-c.Lo
		if n == 0 {
			continue
		}
		dz := c.z.Data
		kernels.Scale(dz, inv, dz)
		for j, t := range c.tgt {
			dz[j*size+int(t)] -= inv
		}
		// dOut [size, d] += dz^T h; dh = dz Out [n, d] (h and dh through
		// the dropout mask, if any).
		kernels.GemmEpilogue(true, false, size, d, n, dz, size, c.h.Data, d, c.Out.G.Data, d, acc)
		dhh := tensor.Ensure(&c.dh, n, d)
		kernels.Gemm(false, false, n, d, size, 1, dz, size, c.Out.W.Data, d, 0, dhh.Data, d)
		if s.dropped {
			kernels.Mul(dhh.Data, dhh.Data, c.mask.Data)
		}
		dxs := tensor.Ensure(&c.dxs, n, in)
		if c.ProjT {
			// h = xs P, P [in, d]: dP += xs^T dh, dxs = dh P^T.
			kernels.GemmEpilogue(true, false, in, d, n, c.xs.Data, in, dhh.Data, d, c.Proj.G.Data, d, acc)
			kernels.Gemm(false, true, n, in, d, 1, dhh.Data, d, c.Proj.W.Data, d, 0, dxs.Data, in)
		} else {
			// h = xs P^T, P [d, in]: dP += dh^T xs, dxs = dh P.
			kernels.GemmEpilogue(true, false, d, in, n, dhh.Data, d, c.xs.Data, in, c.Proj.G.Data, in, acc)
			kernels.Gemm(false, false, n, in, d, 1, dhh.Data, d, c.Proj.W.Data, in, 0, dxs.Data, in)
		}
		for j, r := range c.rows {
			kernels.AddTo(dx.Data[int(r)*in:int(r+1)*in], dxs.Data[j*in:(j+1)*in])
		}
	}
	return dx
}

// LogProb returns the log-probabilities of the whole vocabulary for every
// row of x [..., In] as [..., Vocab] (torch's log_prob; sampling draws from
// it), in a buffer valid until the next LogProb. It does not disturb the
// state Backward needs.
func (s *AdaptiveSoftmax) LogProb(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.Cols() != s.In {
		return nil, fmt.Errorf("adaptive softmax: input %v, want last dimension %d", x.Shape, s.In)
	}
	rows, V := x.Rows(), s.Vocab
	hs, c1 := s.headSize(), s.Cutoffs[0]
	s.fullShape = append(append(s.fullShape[:0], x.Shape[:len(x.Shape)-1]...), V)
	out := tensor.Ensure(&s.full, s.fullShape...)
	if rows == 0 {
		return out, nil
	}
	maxCols := hs
	for _, c := range s.Clusters {
		maxCols = max(maxCols, c.Hi-c.Lo)
	}
	scratch := tensor.Ensure(&s.scratch, rows, maxCols).Data
	h := s.headLogits(x.Data, rows, &s.lpHead, &s.lpXW)
	s.work = asmRows{x: h, ld: hs, cols: hs, scratch: scratch}
	s.runRows(rows)
	for r := 0; r < rows; r++ {
		copy(out.Data[r*V:r*V+c1], h[r*hs:r*hs+c1])
	}
	for k, c := range s.Clusters {
		d, size := c.Dim, c.Hi-c.Lo
		hh := tensor.Ensure(&c.hAll, rows, d)
		s.project(c, x.Data, rows, hh.Data)
		z := out.Data[c.Lo:]
		kernels.GemmEpilogue(false, true, rows, size, d, hh.Data, d, c.Out.W.Data, d, z, V, kernels.Epilogue{})
		s.work = asmRows{x: z, ld: V, cols: size, scratch: scratch, add: h[c1+k:], addLd: hs}
		s.runRows(rows)
	}
	return out, nil
}

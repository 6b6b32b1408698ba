package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// The adaptive input and softmax are checked against float64 versions
// written from the equations (the full distribution over the vocabulary,
// not the per-cluster shortcut the layers take), with gradients from
// central differences of those float64 functions.

// adaptiveParams64 holds float64 copies of parameters, perturbed by the
// finite differences through one flat vector.
type adaptiveParams64 struct {
	ps   []*Param
	off  map[*Param]int
	flat []float64
}

func newAdaptiveParams64(ps ...*Param) *adaptiveParams64 {
	a := &adaptiveParams64{off: map[*Param]int{}}
	for _, p := range ps {
		if _, dup := a.off[p]; dup || p == nil {
			continue
		}
		a.off[p] = len(a.flat)
		a.ps = append(a.ps, p)
		a.flat = append(a.flat, blTo64(p.W.Data)...)
	}
	return a
}

func (a *adaptiveParams64) get(p *Param) []float64 {
	o := a.off[p]
	return a.flat[o : o+p.W.Size()]
}

// input64 is the adaptive input's output for ids: Proj_b Emb_b[id - lo_b].
func input64(ai *AdaptiveInput, P func(*Param) []float64, ids []int) []float64 {
	D := ai.Dim
	out := make([]float64, len(ids)*D)
	for p, id := range ids {
		for _, b := range ai.Bands {
			if id < b.Lo || id >= b.Hi {
				continue
			}
			e := P(b.Emb)[(id-b.Lo)*b.Dim : (id-b.Lo+1)*b.Dim]
			w := P(b.Proj)
			for o := 0; o < D; o++ {
				var s float64
				for i, v := range e {
					s += w[o*b.Dim+i] * v
				}
				out[p*D+o] = s
			}
		}
	}
	return out
}

func logSoftmax64(z []float64) []float64 {
	m := slices.Max(z)
	var s float64
	for _, v := range z {
		s += math.Exp(v - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v - lse
	}
	return out
}

// matVec64 is W x for W [rows, cols] (trans: W is [cols, rows], W^T x).
func matVec64(w []float64, rows, cols int, x []float64, trans bool) []float64 {
	y := make([]float64, rows)
	for r := range y {
		var s float64
		for c := 0; c < cols; c++ {
			if trans {
				s += w[c*rows+r] * x[c]
			} else {
				s += w[r*cols+c] * x[c]
			}
		}
		y[r] = s
	}
	return y
}

// fullLogProb64 is the log-distribution over the vocabulary of one row;
// mask, when not nil, gives dropout factors for cluster k's projection.
func fullLogProb64(s *AdaptiveSoftmax, P func(*Param) []float64, x []float64, mask func(k int) []float32) []float64 {
	in, c1, K := s.In, s.Cutoffs[0], len(s.Clusters)
	var head []float64
	if s.Head != nil {
		head = matVec64(P(s.Head), c1+K, in, x, false)
		if s.HeadBias != nil {
			for i, b := range P(s.HeadBias) {
				head[i] += b
			}
		}
	} else {
		xw := x
		if s.WordProj != nil {
			d0 := s.WordProj.W.Dim(0)
			xw = matVec64(P(s.WordProj), d0, in, x, false)
		}
		head = append(matVec64(P(s.WordEmb), c1, len(xw), xw, false), matVec64(P(s.ClassProj), K, in, x, false)...)
	}
	hl := logSoftmax64(head)
	out := append([]float64(nil), hl[:c1]...)
	for k, c := range s.Clusters {
		var h []float64
		if c.ProjT {
			h = matVec64(P(c.Proj), c.Dim, in, x, true)
		} else {
			h = matVec64(P(c.Proj), c.Dim, in, x, false)
		}
		if mask != nil {
			if m := mask(k); m != nil {
				for i := range h {
					h[i] *= float64(m[i])
				}
			}
		}
		for _, v := range logSoftmax64(matVec64(P(c.Out), c.Hi-c.Lo, c.Dim, h, false)) {
			out = append(out, v+hl[c1+k])
		}
	}
	return out
}

// nll64 is the mean negative log-likelihood of targets, and the target
// log-probabilities; with masked, through the dropout masks of the last
// ForwardTrain of s.
func nll64(s *AdaptiveSoftmax, P func(*Param) []float64, x []float64, targets []int, masked bool) (float64, []float64) {
	var total float64
	lp := make([]float64, len(targets))
	for r, t := range targets {
		var mask func(k int) []float32
		if masked {
			mask = func(k int) []float32 {
				c := s.Clusters[k]
				if j := slices.Index(c.rows, int32(r)); j >= 0 {
					return c.mask.Data[j*c.Dim : (j+1)*c.Dim]
				}
				return nil
			}
		}
		lp[r] = fullLogProb64(s, P, x[r*s.In:(r+1)*s.In], mask)[t]
		total -= lp[r]
	}
	return total / float64(len(targets)), lp
}

// adaptiveTargets draws n uniform targets, none in cluster skip (>= 0) so
// that the layer meets an empty cluster.
func adaptiveTargets(rng *rand.Rand, n int, cut []int, skip int) []int {
	t := make([]int, 0, n)
	for len(t) < n {
		id := rng.IntN(cut[len(cut)-1])
		if skip >= 0 && id >= cut[skip] && id < cut[skip+1] {
			continue
		}
		t = append(t, id)
	}
	return t
}

func randomise(rng *rand.Rand, std float64, ps ...*Param) {
	for _, p := range ps {
		for i := range p.W.Data {
			p.W.Data[i] = float32(std * rng.NormFloat64())
		}
	}
}

func TestAdaptiveInput(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ids            []int
		cut            []int
		vocab, d0, dim int
		factor         float64
	}{
		{"three_bands", []int{0, 5, 19, 7, 12, 5, 3, 18, 6, 11, 0, 13}, []int{6, 12}, 20, 8, 16, 2},
		{"wiki103_shape", []int{1, 20, 14, 7, 7, 2, 19}, []int{6, 12, 21}, 21, 16, 16, 4},
		// Every id in the last band: the projection goes straight to the output.
		{"one_band_hit", []int{13, 17, 13, 19}, []int{6, 12}, 20, 8, 16, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ai, err := NewAdaptiveInput("embed_tokens", tc.vocab, tc.d0, tc.factor, tc.dim, tc.cut)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ai.Init(rng)
			for _, b := range ai.Bands {
				Fill(b.Emb.G, 0.5) // gradients accumulate
				Fill(b.Proj.G, 0.5)
			}
			y, err := ai.Forward(tc.ids, 1, len(tc.ids))
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.ShapeEq(y.Shape, []int{1, len(tc.ids), tc.dim}) {
				t.Fatalf("shape %v", y.Shape)
			}
			P := newAdaptiveParams64(ai.Params()...)
			assertClose(t, "y", y.Data, input64(ai, P.get, tc.ids), 1e-5, 1e-6)
			w := blRand(9, 1, len(tc.ids), tc.dim)
			ai.Backward(w)
			f := func(v []float64) float64 {
				copy(P.flat, v)
				return blDotLoss(input64(ai, P.get, tc.ids), w.Data)
			}
			g := numGrad(f, slices.Clone(P.flat), 1e-6)
			for _, p := range P.ps {
				got := make([]float32, p.G.Size())
				for i, v := range p.G.Data {
					got[i] = v - 0.5
				}
				o := P.off[p]
				assertClose(t, "d"+p.Name, got, g[o:o+p.W.Size()], 1e-4, 1e-6)
			}
		})
	}
	ai, _ := NewAdaptiveInput("e", 20, 8, 2, 16, []int{6, 12})
	if _, err := ai.Forward([]int{3, 20}); err == nil {
		t.Error("id 20 of a 20-word vocabulary accepted")
	}
	for _, cut := range [][]int{{6, 6}, {0, 5}, {12, 6}, {6, 25}} {
		if _, err := NewAdaptiveInput("e", 20, 8, 2, 16, cut); err == nil {
			t.Errorf("cut-offs %v accepted", cut)
		}
	}
	if _, err := NewAdaptiveInput("e", 20, 8, 4, 16, []int{6, 12}); err == nil {
		t.Error("band of width 8/4^2 = 0 accepted")
	}
	names := []string{}
	for _, p := range ai.Params() {
		names = append(names, fmt.Sprintf("%s%v", p.Name, p.W.Shape))
	}
	want := []string{"e.embeddings.0.0.weight[6 8]", "e.embeddings.0.1.weight[16 8]", "e.embeddings.1.0.weight[6 4]",
		"e.embeddings.1.1.weight[16 4]", "e.embeddings.2.0.weight[8 2]", "e.embeddings.2.1.weight[16 2]"}
	if !slices.Equal(names, want) {
		t.Errorf("parameters %q, want %q", names, want)
	}
}

// checkSoftmax compares loss, target log-probabilities, the full
// distribution and every gradient of s (and of ai, when tied and fed by
// it) with the float64 reference.
func checkSoftmax(t *testing.T, s *AdaptiveSoftmax, ai *AdaptiveInput, x *tensor.Tensor, ids, targets []int) {
	t.Helper()
	all := append([]*Param(nil), s.Params()...)
	if ai != nil {
		all = append(all, ai.Params()...)
	}
	for _, p := range all {
		Fill(p.G, 0.5)
	}
	P := newAdaptiveParams64(all...)
	if ai != nil {
		var err error
		if x, err = ai.Forward(ids); err != nil {
			t.Fatal(err)
		}
	}
	x64 := blTo64(x.Data)
	loss, err := s.Forward(x, targets)
	if err != nil {
		t.Fatal(err)
	}
	want, wantLP := nll64(s, P.get, x64, targets, false)
	assertClose(t, "loss", []float32{float32(loss)}, []float64{want}, 1e-6, 0)
	gotLP := make([]float32, len(targets))
	for i, v := range s.TargetLogProbs() {
		gotLP[i] = float32(v)
	}
	assertClose(t, "target log-probs", gotLP, wantLP, 1e-5, 1e-6)
	dx := s.Backward()
	if ai != nil {
		ai.Backward(dx)
	}
	// The full distribution, after Backward so that LogProb is seen not
	// to need the training state.
	full, err := s.LogProb(x)
	if err != nil {
		t.Fatal(err)
	}
	var wantFull []float64
	for r := range targets {
		wantFull = append(wantFull, fullLogProb64(s, P.get, x64[r*s.In:(r+1)*s.In], nil)...)
	}
	assertClose(t, "log_prob", full.Data, wantFull, 1e-5, 1e-5)
	for r := range targets {
		var z float64
		for _, v := range full.Data[r*s.Vocab : (r+1)*s.Vocab] {
			z += math.Exp(float64(v))
		}
		if math.Abs(z-1) > 1e-5 {
			t.Fatalf("row %d: probabilities sum to %g", r, z)
		}
	}
	// Gradients: of the parameters (through the input too when tied) and
	// of x when untied.
	f := func(v []float64) float64 {
		copy(P.flat, v)
		xx := x64
		if ai != nil {
			xx = input64(ai, P.get, ids)
		}
		l, _ := nll64(s, P.get, xx, targets, false)
		return l
	}
	g := numGrad(f, slices.Clone(P.flat), 1e-6)
	for _, p := range P.ps {
		got := make([]float32, p.G.Size())
		for i, v := range p.G.Data {
			got[i] = v - 0.5
		}
		o := P.off[p]
		assertClose(t, "d"+p.Name, got, g[o:o+p.W.Size()], 1e-4, 2e-6)
	}
	if ai == nil {
		P2 := newAdaptiveParams64(all...)
		fx := func(v []float64) float64 { l, _ := nll64(s, P2.get, v, targets, false); return l }
		assertClose(t, "dx", dx.Data, numGrad(fx, slices.Clone(x64), 1e-6), 1e-4, 2e-6)
	}
}

func TestAdaptiveSoftmax(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     int
		cut    []int
		factor float64
		bias   bool
		rows   int
		skip   int
		vocab  int
	}{
		{"two_clusters", 16, []int{6, 12}, 4, false, 24, -1, 20},
		{"bias_empty_cluster", 16, []int{6, 12}, 4, true, 10, 0, 20},
		{"one_cluster_factor2", 8, []int{5}, 2, true, 9, -1, 13},
		{"no_cluster", 8, nil, 4, true, 5, -1, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewAdaptiveSoftmax("asm", tc.in, tc.vocab, tc.cut, tc.factor, tc.bias)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			randomise(rng, 0.5, s.Params()...)
			x := blRand(5, 1, tc.rows, tc.in)
			targets := adaptiveTargets(rng, tc.rows, s.Cutoffs, tc.skip)
			checkSoftmax(t, s, nil, x, nil, targets)
		})
	}
	s, _ := NewAdaptiveSoftmax("asm", 16, 20, []int{6, 12}, 4, true)
	var names []string
	for _, p := range s.Params() {
		names = append(names, fmt.Sprintf("%s%v", p.Name, p.W.Shape))
	}
	want := []string{"asm.head.weight[8 16]", "asm.head.bias[8]", "asm.tail.0.0.weight[4 16]", "asm.tail.0.1.weight[6 4]",
		"asm.tail.1.0.weight[1 16]", "asm.tail.1.1.weight[8 1]"}
	if !slices.Equal(names, want) {
		t.Errorf("parameters %q, want %q", names, want)
	}
	if _, err := s.Forward(blRand(1, 1, 2, 16), []int{3, 20}); err == nil {
		t.Error("target 20 of a 20-word vocabulary accepted")
	}
	if _, err := s.Forward(blRand(1, 1, 2, 8), []int{3, 4}); err == nil {
		t.Error("input of width 8 accepted by a 16-wide softmax")
	}
}

// TestAdaptiveTied runs the adaptive input into the tied softmax (fairseq's
// wiki103 arrangement): the shared embeddings and projections collect the
// gradients of both uses.
func TestAdaptiveTied(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d0      int
		factor  float64
		tieProj bool
	}{
		{"wiki103_tie_proj", 16, 4, true}, // band 0 as wide as the model: no word projection
		{"wiki103_own_proj", 16, 4, false},
		{"word_proj_tie_proj", 8, 2, true}, // band 0 narrower: head.word_proj
		{"word_proj_own_proj", 8, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ai, err := NewAdaptiveInput("embed_tokens", 20, tc.d0, tc.factor, 16, []int{6, 12})
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewTiedAdaptiveSoftmax("adaptive_softmax", 16, ai, tc.tieProj)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 6))
			randomise(rng, 0.5, ai.Params()...)
			randomise(rng, 0.5, s.Params()...)
			if (s.WordProj != nil) != (tc.d0 != 16) {
				t.Fatalf("word projection %v for band 0 of width %d", s.WordProj != nil, tc.d0)
			}
			want := 1
			if !tc.tieProj {
				want += 2
			}
			if s.WordProj != nil {
				want++
			}
			if len(s.Params()) != want {
				t.Fatalf("%d owned parameters, want %d", len(s.Params()), want)
			}
			ids := []int{0, 5, 19, 7, 12, 5, 3, 18, 6, 11, 0, 13, 2, 2}
			targets := adaptiveTargets(rng, len(ids), s.Cutoffs, -1)
			checkSoftmax(t, s, ai, nil, ids, targets)
		})
	}
	ai, _ := NewAdaptiveInput("e", 20, 8, 2, 16, []int{6, 12})
	if _, err := NewTiedAdaptiveSoftmax("s", 12, ai, true); err == nil {
		t.Error("tied projections with a 12-wide input on a 16-wide adaptive input accepted")
	}
}

// TestAdaptiveTailDropout: ForwardTrain's dropout inside the clusters,
// checked through its own masks; zero rate or Forward draw nothing.
func TestAdaptiveTailDropout(t *testing.T) {
	for _, tieProj := range []bool{false, true} {
		t.Run(fmt.Sprintf("tied_proj_%v", tieProj), func(t *testing.T) {
			var s *AdaptiveSoftmax
			var err error
			if tieProj {
				ai, _ := NewAdaptiveInput("e", 20, 16, 2, 16, []int{6, 12})
				randomise(rand.New(rand.NewPCG(1, 1)), 0.5, ai.Params()...)
				s, err = NewTiedAdaptiveSoftmax("asm", 16, ai, true)
			} else {
				s, err = NewAdaptiveSoftmax("asm", 16, 20, []int{6, 12}, 2, true)
			}
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			randomise(rng, 0.5, s.Params()...)
			s.TailDropout = 0.3
			x := blRand(5, 1, 30, 16)
			targets := adaptiveTargets(rng, 30, s.Cutoffs, -1)
			var all []*Param
			for _, p := range append(s.Params(), s.WordEmb) {
				if p != nil {
					all = append(all, p)
				}
			}
			for _, c := range s.Clusters {
				all = append(all, c.Proj, c.Out)
			}
			P := newAdaptiveParams64(all...)
			for _, p := range P.ps {
				p.G.Zero()
			}
			loss, err := s.ForwardTrain(x, targets, rand.New(rand.NewPCG(9, 9)))
			if err != nil {
				t.Fatal(err)
			}
			zeros := 0
			for _, c := range s.Clusters {
				for _, v := range c.mask.Data[:len(c.rows)*c.Dim] {
					if v == 0 {
						zeros++
					}
				}
			}
			if zeros == 0 {
				t.Fatal("dropout 0.3 dropped nothing")
			}
			x64 := blTo64(x.Data)
			want, _ := nll64(s, P.get, x64, targets, true)
			assertClose(t, "loss", []float32{float32(loss)}, []float64{want}, 1e-6, 0)
			dx := s.Backward()
			g := numGrad(func(v []float64) float64 {
				copy(P.flat, v)
				l, _ := nll64(s, P.get, x64, targets, true)
				return l
			}, slices.Clone(P.flat), 1e-6)
			for _, p := range P.ps {
				o := P.off[p]
				assertClose(t, "d"+p.Name, p.G.Data, g[o:o+p.W.Size()], 1e-4, 2e-6)
			}
			P2 := newAdaptiveParams64(all...)
			gx := numGrad(func(v []float64) float64 { l, _ := nll64(s, P2.get, v, targets, true); return l }, slices.Clone(x64), 1e-6)
			assertClose(t, "dx", dx.Data, gx, 1e-4, 2e-6)
			// Evaluation ignores the rate.
			l1, _ := s.Forward(x, targets)
			s.TailDropout = 0
			l2, _ := s.ForwardTrain(x, targets, rng)
			if l1 != l2 {
				t.Fatalf("Forward %g and ForwardTrain at rate 0 %g differ", l1, l2)
			}
		})
	}
}

// adaptiveStep is one forward and backward of an adaptive input feeding a
// tied adaptive softmax on a language-model-like batch.
type adaptiveStep struct {
	ai  *AdaptiveInput
	s   *AdaptiveSoftmax
	ids []int
	tgt []int
	rng *rand.Rand
}

func newAdaptiveStep(t testing.TB, rows, vocab int, tie bool) *adaptiveStep {
	ai, err := NewAdaptiveInput("embed_tokens", vocab, 64, 4, 64, []int{vocab / 10, vocab / 3})
	if err != nil {
		t.Fatal(err)
	}
	var s *AdaptiveSoftmax
	if tie {
		s, err = NewTiedAdaptiveSoftmax("adaptive_softmax", 64, ai, true)
	} else {
		s, err = NewAdaptiveSoftmax("adaptive_softmax", 64, vocab, []int{vocab / 10, vocab / 3}, 4, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ai.Init(rng)
	s.Init(rng)
	s.TailDropout = 0.2
	st := &adaptiveStep{ai: ai, s: s, ids: make([]int, rows), tgt: make([]int, rows), rng: rand.New(rand.NewPCG(9, 10))}
	for i := range st.ids {
		// Zipf-like: most ids in the shortlist, some in every cluster.
		st.ids[i] = min(vocab-1, int(float64(vocab)*math.Pow(rng.Float64(), 3)))
		st.tgt[i] = min(vocab-1, int(float64(vocab)*math.Pow(rng.Float64(), 3)))
	}
	return st
}

func (st *adaptiveStep) run() {
	x, err := st.ai.Forward(st.ids)
	if err != nil {
		panic(err)
	}
	if _, err := st.s.ForwardTrain(x, st.tgt, st.rng); err != nil {
		panic(err)
	}
	st.ai.Backward(st.s.Backward())
}

// TestAdaptiveThreadInvariant: gradients and loss are bit-identical with 1
// and 2 threads (rows split across the pool in the softmaxes).
func TestAdaptiveThreadInvariant(t *testing.T) {
	var grads [2][][]float32
	var losses [2][]float64
	for i, th := range []int{1, 2} {
		func() {
			prev := kernels.Threads()
			kernels.SetThreads(th)
			defer kernels.SetThreads(prev)
			st := newAdaptiveStep(t, 300, 3000, true)
			st.run()
			losses[i] = slices.Clone(st.s.TargetLogProbs())
			for _, p := range append(st.ai.Params(), st.s.Params()...) {
				grads[i] = append(grads[i], slices.Clone(p.G.Data))
			}
		}()
	}
	if !slices.Equal(losses[0], losses[1]) {
		t.Fatal("target log-probs differ between 1 and 2 threads")
	}
	for j := range grads[0] {
		if !slices.Equal(grads[0][j], grads[1][j]) {
			t.Fatalf("gradient %d differs between 1 and 2 threads", j)
		}
	}
}

// TestAdaptiveNoAlloc: steady-state training steps and LogProb allocate
// nothing.
func TestAdaptiveNoAlloc(t *testing.T) {
	for _, tie := range []bool{false, true} {
		st := newAdaptiveStep(t, 256, 3000, tie)
		st.run()
		if a := testing.AllocsPerRun(5, st.run); a != 0 {
			t.Errorf("tied %v: %g allocations per training step", tie, a)
		}
		x := blRand(1, 1, 1, 64)
		lp := func() {
			if _, err := st.s.LogProb(x); err != nil {
				panic(err)
			}
		}
		lp()
		if a := testing.AllocsPerRun(5, lp); a != 0 {
			t.Errorf("tied %v: %g allocations per LogProb", tie, a)
		}
	}
}

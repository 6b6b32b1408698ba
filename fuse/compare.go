package fuse

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Compare runs two models of the same architecture (typically a model and
// its folded copy) in evaluation mode on the same random batch (images for
// a classifier, 16-token windows for a language model) and returns the
// largest absolute logit difference and the largest |logit| of a.
func Compare(a, b models.Model, batch int, seed uint64) (diff, maxLogit float64, err error) {
	r := rand.New(rand.NewPCG(seed, 2))
	var ya, yb *tensor.Tensor
	switch am := a.(type) {
	case models.Classifier:
		bm, ok := b.(models.Classifier)
		if !ok {
			return 0, 0, fmt.Errorf("fuse: %s is a classifier, %s is not", name(a), name(b))
		}
		c, h, w := am.InputShape()
		x := tensor.New(batch, c, h, w)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		if ya, err = am.Forward(x, nn.Eval); err != nil {
			return 0, 0, err
		}
		ya = ya.Clone()
		if yb, err = bm.Forward(x, nn.Eval); err != nil {
			return 0, 0, err
		}
	case models.LM:
		bm, ok := b.(models.LM)
		if !ok {
			return 0, 0, fmt.Errorf("fuse: %s is a language model, %s is not", name(a), name(b))
		}
		T := min(16, am.Context())
		ids := make([]int, batch*T)
		for i := range ids {
			ids[i] = r.IntN(am.Vocab())
		}
		if ya, err = am.Forward(ids, batch, T, nn.Eval); err != nil {
			return 0, 0, err
		}
		ya = ya.Clone()
		if yb, err = bm.Forward(ids, batch, T, nn.Eval); err != nil {
			return 0, 0, err
		}
	default:
		return 0, 0, fmt.Errorf("fuse: %s: a %s model is neither a classifier nor a language model", name(a), a.Family())
	}
	if len(ya.Data) != len(yb.Data) {
		return 0, 0, fmt.Errorf("fuse: %s gives %d logits, %s %d", name(a), len(ya.Data), name(b), len(yb.Data))
	}
	for i := range ya.Data {
		diff = math.Max(diff, math.Abs(float64(ya.Data[i]-yb.Data[i])))
		maxLogit = math.Max(maxLogit, math.Abs(float64(ya.Data[i])))
	}
	return diff, maxLogit, nil
}

// LMCheck compares a language model with its folded copy.
type LMCheck struct {
	// Loss is the original's mean loss over the windows, Tokens their
	// count; FoldedLoss the copy's.
	Loss, FoldedLoss float64
	Tokens           int
	// RelErr is ||folded - unfolded|| / ||unfolded|| over all logits of
	// the windows; MaxAbs the largest single difference.
	RelErr, MaxAbs float64
	// GreedySame is how many of the GreedyTokens greedy tokens after the
	// prompt agree (all of them when the fold is exact enough);
	// GreedyText is the folded copy's continuation.
	GreedyTokens, GreedySame int
	GreedyText               string
}

// CompareLM evaluates m and its folded copy mf side by side over
// consecutive B x T windows of stream (the same windows) and greedily
// generates n tokens after prompt with both.
func CompareLM(m, mf models.Decoder, tok data.Tokenizer, stream []int, B, T int, prompt string, n int) (*LMCheck, error) {
	bt, err := data.NewBatcher(stream, B, T, 0)
	if err != nil {
		return nil, err
	}
	var loss, lossF nn.VocabLoss
	var sum, sumF, num, den, maxAbs float64
	batches := 0
	for bt.Sequential() {
		a, err := m.Forward(bt.Inputs, B, T, nn.Eval)
		if err != nil {
			return nil, err
		}
		b, err := mf.Forward(bt.Inputs, B, T, nn.Eval)
		if err != nil {
			return nil, err
		}
		for i, x := range a.Data {
			d := float64(b.Data[i] - x)
			num += d * d
			den += float64(x) * float64(x)
			maxAbs = math.Max(maxAbs, math.Abs(d))
		}
		sum += loss.Forward(a, bt.Targets)
		sumF += lossF.Forward(b, bt.Targets)
		batches++
	}
	if batches == 0 {
		return nil, fmt.Errorf("text shorter than one batch of %dx%d tokens", B, T+1)
	}
	c := &LMCheck{Loss: sum / float64(batches), FoldedLoss: sumF / float64(batches), Tokens: batches * B * T,
		RelErr: math.Sqrt(num / den), MaxAbs: maxAbs, GreedyTokens: n}
	ids, err := tok.Encode(prompt)
	if err != nil || len(ids) == 0 {
		return nil, fmt.Errorf("prompt: cannot encode %q: %v", prompt, err)
	}
	var outs [2][]int
	for i, mm := range []models.Decoder{m, mf} {
		st, err := mm.NewSession(1, min(len(ids)+n, mm.Context()))
		if err != nil {
			return nil, err
		}
		if outs[i], err = st.Generate(ids, n, nn.NewSampler(0, 0, 1, 1), nil, nil); err != nil {
			return nil, err
		}
	}
	for c.GreedySame < len(outs[0]) && c.GreedySame < len(outs[1]) && outs[0][c.GreedySame] == outs[1][c.GreedySame] {
		c.GreedySame++
	}
	if c.GreedyText, err = data.Decode(tok, outs[1]); err != nil {
		return nil, err
	}
	return c, nil
}

// FileReport is what FoldFile did.
type FileReport struct {
	// Model is the model as read, Folded its folded copy (as written).
	Model, Folded models.Model
	// Warnings are the loader's (models.Load).
	Warnings []string
	// MaxAbsDiff and MaxLogit are Compare's on a batch of 8.
	MaxAbsDiff, MaxLogit float64
}

// FoldFile folds the model of a slab checkpoint (training or weights file,
// any family) and writes the deploy weights to out, recording in which
// file it was folded from and keeping a language model's tokenizer.
func FoldFile(in, out string) (*FileReport, error) {
	m, f, warns, err := models.Load(in)
	if err != nil {
		return nil, err
	}
	d, err := Copy(m)
	if err != nil {
		return nil, err
	}
	r := &FileReport{Model: m, Folded: d, Warnings: warns}
	if r.MaxAbsDiff, r.MaxLogit, err = Compare(m, d, 8, 1); err != nil {
		return nil, err
	}
	meta := map[string]string{"fused_from": in}
	for _, k := range []string{"tokenizer", "tokenizer_vocab"} { // a language model's text side
		if v, ok := f.Metadata[k]; ok {
			meta[k] = v
		}
	}
	if err := nn.CheckFiniteParams(d); err != nil { // never write a deploy file that is not finite
		return nil, fmt.Errorf("fuse: %s: folded %v", in, err)
	}
	wf, err := models.WeightsFile(d, meta)
	if err != nil {
		return nil, err
	}
	return r, checkpoint.Write(out, wf)
}

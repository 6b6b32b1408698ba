package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// lmEval times what slab eval-lm does per batch (train.EvaluateLM, which
// this package cannot import): the mean next-token loss of a B x T window
// in evaluation mode, through ForwardLoss for a models.LossLM (an adaptive
// softmax scores the head and only each target's cluster) and through full
// logits and nn.VocabLoss otherwise. Ids and targets are drawn once, so
// every round scores the same window, from a Zipf-like profile
// (floor(V^u), u uniform): an adaptive softmax's cost depends on how many
// targets fall in its tail clusters, and in text most fall in the head
// (log-uniform ids put 79 % of SOTU's word targets below 2000 where the
// corpus has 87 %; uniform ids would put 13 %).
type lmEval struct {
	m           models.LM
	B, T        int
	ids, target []int
	loss        nn.VocabLoss
	wall, cpu   []float64 // tokens/s of each timed call
}

// newLMEval prepares a B x T evaluation of m; T 0 is m's context.
func newLMEval(m models.LM, name string, B, T int, rng *rand.Rand) (*lmEval, error) {
	if T == 0 {
		T = m.Context()
	}
	if B < 1 || T < 1 || T > m.Context() {
		return nil, fmt.Errorf("bench: %s: evaluation window %d x %d (want batch >= 1 and 1 <= sequence <= %d)", name, B, T, m.Context())
	}
	e := &lmEval{m: m, B: B, T: T, ids: make([]int, B*T), target: make([]int, B*T)}
	lnV := math.Log(float64(m.Vocab()))
	zipf := func() int { return min(m.Vocab()-1, int(math.Exp(rng.Float64()*lnV))-1) }
	for i := range e.ids {
		e.ids[i], e.target[i] = zipf(), zipf()
	}
	return e, nil
}

// run scores the window once; record keeps its rates.
func (e *lmEval) run(record bool) error {
	c0 := CPUTime()
	t0 := time.Now()
	if ll, ok := e.m.(models.LossLM); ok {
		if _, err := ll.ForwardLoss(e.ids, e.target, e.B, e.T, nn.Eval); err != nil {
			return err
		}
	} else {
		lg, err := e.m.Forward(e.ids, e.B, e.T, nn.Eval)
		if err != nil {
			return err
		}
		e.loss.Forward(lg, e.target)
	}
	wall := time.Since(t0).Seconds()
	cpu := (CPUTime() - c0).Seconds() / float64(kernels.Threads())
	if record {
		n := float64(e.B * e.T)
		e.wall = append(e.wall, n/wall)
		if cpu > 0 {
			e.cpu = append(e.cpu, n/cpu)
		}
	}
	return nil
}

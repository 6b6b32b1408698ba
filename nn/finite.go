package nn

import (
	"fmt"
	"math"
	"strings"

	"github.com/slabml/slab/tensor"
)

// Finite-value checks: a NaN or an infinity that reaches a checkpoint, a
// folded model or a result is a silent wrong answer, so loads, folds and
// inputs are checked once, and a diverged training names the first layer
// whose output stopped being finite.

// FirstNonFinite returns the index of the first NaN or infinite value of
// xs, or -1 when all are finite.
func FirstNonFinite(xs []float32) int {
	for i, v := range xs {
		// v-v is 0 for every finite v and NaN for NaN and ±Inf; one
		// subtraction and compare per value keeps this at memory speed.
		if v-v != 0 {
			return i
		}
	}
	return -1
}

// CheckFinite returns an error naming what, the position and the value of
// t's first non-finite value, or nil.
func CheckFinite(what string, t *tensor.Tensor) error {
	i := FirstNonFinite(t.Data)
	if i < 0 {
		return nil
	}
	return fmt.Errorf("%s holds %v at %v (flat index %d): not a finite number", what, t.Data[i], unravel(i, t.Shape), i)
}

// CheckFiniteParams returns an error naming m's first parameter or
// floating buffer (in Params, then Buffers order) holding a NaN or an
// infinity, or nil.
func CheckFiniteParams(m Module) error {
	for _, p := range m.Params() {
		if p.W != nil {
			if err := CheckFinite("tensor "+p.Name, p.W); err != nil {
				return err
			}
		}
	}
	for _, b := range m.Buffers() {
		if b.F != nil {
			if err := CheckFinite("tensor "+b.Name, b.F); err != nil {
				return err
			}
		}
	}
	return nil
}

// unravel turns a flat index into a multi-index of shape.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// LocateNonFinite explains where a forward pass of m stops being finite,
// for a training run whose loss became NaN or infinite. It first looks for
// a parameter that is no longer finite (the optimizer's last update broke
// it); otherwise it runs forward once more with every norm among slots
// watched (norms sit between every sublayer of a Transformer, so the first
// norm whose input is not finite brackets the layer at fault, and the
// parameters between the two norms, in m.Params order, name it). The
// norms are restored before it returns; forward's side effects (running
// statistics, schedules) are those of one more training call, so call it
// only on a run that stops. The result reads as a clause:
// "first non-finite output: blocks.3.attn (input of blocks.3.norm2; blocks.3.norm1's input finite)".
func LocateNonFinite(m Module, slots []NormSlot, forward func() error) string {
	if err := CheckFiniteParams(m); err != nil {
		return "weights no longer finite: " + err.Error()
	}
	p := &normProbe{}
	saved := make([]Norm, len(slots))
	for i, s := range slots {
		saved[i] = *s.Norm
		*s.Norm = &probedNorm{Norm: saved[i], probe: p, name: s.Name}
	}
	err := forward()
	for i, s := range slots {
		*s.Norm = saved[i]
	}
	if err != nil {
		return fmt.Sprintf("re-running the batch failed: %v", err)
	}
	names := paramNames(m)
	prev := ""
	for _, c := range p.calls {
		if !c.in {
			layer := layerBetween(names, prev, c.name)
			if prev == "" {
				return fmt.Sprintf("first non-finite output: %s (input of %s, the first norm)", layer, c.name)
			}
			return fmt.Sprintf("first non-finite output: %s (input of %s; %s's input finite)", layer, c.name, prev)
		}
		if !c.out {
			return fmt.Sprintf("first non-finite output: %s (its input finite)", c.name)
		}
		prev = c.name
	}
	if prev == "" {
		return "no norm to watch; every weight is finite"
	}
	return fmt.Sprintf("first non-finite output: %s (after the last norm, %s; every norm's input and output finite)", layerBetween(names, prev, ""), prev)
}

// normProbe records, in call order, whether each norm's input and output
// were finite.
type normProbe struct {
	calls []probeCall
}

type probeCall struct {
	name    string
	in, out bool
}

// probedNorm is a Norm that reports to its probe.
type probedNorm struct {
	Norm
	probe *normProbe
	name  string
}

// Forward runs the norm and records whether x and the result are finite.
func (n *probedNorm) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	in := FirstNonFinite(x.Data) < 0
	y := n.Norm.Forward(x, mode)
	n.probe.calls = append(n.probe.calls, probeCall{name: n.name, in: in, out: FirstNonFinite(y.Data) < 0})
	return y
}

func paramNames(m Module) []string {
	ps := m.Params()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// layerBetween names the layers whose parameters come after norm a's and
// before norm b's in names ("" a: from the start; "" b: to the end): their
// longest common dotted prefix, else the first and last of them.
func layerBetween(names []string, a, b string) string {
	start, end := 0, len(names)
	if a != "" {
		for i, n := range names {
			if strings.HasPrefix(n, a+".") {
				start = i + 1
			}
		}
	}
	if b != "" {
		for i, n := range names {
			if strings.HasPrefix(n, b+".") {
				end = i
				break
			}
		}
	}
	var between []string
	for _, n := range names[min(start, len(names)):max(end, min(start, len(names)))] {
		if !isNormParam(n, a) && !isNormParam(n, b) {
			between = append(between, n)
		}
	}
	switch len(between) {
	case 0:
		if b == "" {
			return "the layers after " + a
		}
		if a == "" {
			return "the layers before " + b
		}
		return fmt.Sprintf("the layers between %s and %s", a, b)
	case 1:
		return strings.TrimSuffix(strings.TrimSuffix(between[0], ".weight"), ".bias")
	}
	if pre := commonPrefix(between); pre != "" {
		return pre
	}
	return between[0] + " ... " + between[len(between)-1]
}

func isNormParam(n, norm string) bool { return norm != "" && strings.HasPrefix(n, norm+".") }

// commonPrefix is the longest dotted prefix shared by every name, without
// its trailing dot ("" when they share none).
func commonPrefix(names []string) string {
	parts := strings.Split(names[0], ".")
	k := len(parts) - 1 // never the whole first name: it is a tensor
	for _, n := range names[1:] {
		ps := strings.Split(n, ".")
		j := 0
		for j < k && j < len(ps) && ps[j] == parts[j] {
			j++
		}
		k = j
	}
	return strings.Join(parts[:k], ".")
}

// IsFinite reports whether x is neither NaN nor infinite.
func IsFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// CheckFiniteGrads returns an error naming where the gradients of ps
// (listed in forward order) stop being finite, or nil. Backward runs
// from the last layer to the first and a NaN spreads to every layer
// before the one producing it, so the one named is the last of ps whose
// gradient holds a NaN or an infinity: the layer a non-finite gradient
// norm comes from, found before the optimizer writes it into the weights.
func CheckFiniteGrads(ps []*Param) error {
	for i := len(ps) - 1; i >= 0; i-- {
		if p := ps[i]; p.G != nil {
			if err := CheckFinite("the gradient of "+p.Name, p.G); err != nil {
				return fmt.Errorf("first non-finite gradient in backward order: %v", err)
			}
		}
	}
	return nil
}

package vit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/tensor"
)

// LoadState copies an official (or slab-exported) state dict onto m
// (SLAB.md 4.6). Names are the model's own, which are the official ones, so
// most keys map 1:1; on top of that:
//
//   - A wrapper prefix "model." or "module." shared by every key is removed.
//   - A prepbn (LinearNorm) model accepts bare RepBN keys P.alpha,
//     P.bn.* for its P.norm2.* (e.g. DeiT-T-PRepBN's layout): the LN branch
//     keeps its initial values and the schedule is set finished (iter 0,
//     pure RepBN), with one warning.
//   - A repbn model accepts LinearNorm keys: P.norm2.* load into the RepBN,
//     and P.norm1.*, P.warm, P.iter, P.total_step are consumed (a released
//     model has iter 0; deploying a mid-schedule one changes nothing at
//     inference, which uses the RepBN branch only).
//   - Absent num_batches_tracked (older PyTorch) and warm (detection
//     LinearNorm) counters are set to 0, with one warning.
//   - A LinearNorm iter > 0 gives a warning naming the key (a released model
//     should have finished its schedule; a training checkpoint resumes it).
//
// Missing, unexpected and mis-shaped keys are collected and reported in ONE
// error; m is left untouched on error.
func LoadState(m *Model, state map[string]*checkpoint.Entry) (warnings []string, err error) {
	state = stripWrapper(state)
	prefixes := m.normPrefixes()
	used := map[string]bool{}
	var missing, shapes []string
	var todo []func() // copies, run only once everything fits
	var iterKeys, defaulted []string
	bareIntoLinear := false

	// lookup finds the state key holding model name n.
	lookup := func(n string) (string, *checkpoint.Entry) {
		if e, ok := state[n]; ok {
			return n, e
		}
		for _, p := range prefixes {
			if !strings.HasPrefix(n, p+".") {
				continue
			}
			rest := n[len(p)+1:]
			switch m.Cfg.Norm {
			case NormPRepBN: // our P.norm2.X <- bare P.X
				if r, ok := strings.CutPrefix(rest, "norm2."); ok {
					if e, ok := state[p+"."+r]; ok {
						bareIntoLinear = true
						return p + "." + r, e
					}
				}
			case NormRepBN: // our P.X <- LinearNorm P.norm2.X
				if e, ok := state[p+".norm2."+rest]; ok {
					for _, extra := range []string{"norm1.weight", "norm1.bias", "warm", "iter", "total_step"} {
						if _, ok := state[p+"."+extra]; ok {
							used[p+"."+extra] = true
						}
					}
					if e2, ok := state[p+".iter"]; ok && firstInt(e2) > 0 {
						iterKeys = appendOnce(iterKeys, p+".iter")
					}
					return p + ".norm2." + rest, e
				}
			}
		}
		return "", nil
	}

	for _, p := range m.Params() {
		key, e := lookup(p.Name)
		if e == nil {
			if bareLNBranch(m, prefixes, p.Name) && hasBare(state, prefixes) {
				continue // LN branch absent from a bare-RepBN state: keep init
			}
			missing = append(missing, p.Name)
			continue
		}
		used[key] = true
		if !tensor.ShapeEq(squeezeShape(e.Shape), squeezeShape(p.W.Shape)) || e.Numel() != p.W.Size() {
			shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model %v", key, e.Shape, p.W.Shape))
			continue
		}
		t, terr := e.Tensor(key)
		if terr != nil {
			shapes = append(shapes, terr.Error())
			continue
		}
		dst, pp := p.W, p
		todo = append(todo, func() { copy(dst.Data, t.Data); pp.MarkChanged() })
	}
	for _, b := range m.Buffers() {
		key, e := lookup(b.Name)
		if e == nil {
			if bareLNBranch(m, prefixes, b.Name) && hasBare(state, prefixes) {
				continue // counters absent: set below
			}
			if b.I != nil && (strings.HasSuffix(b.Name, ".num_batches_tracked") || strings.HasSuffix(b.Name, ".warm")) {
				// Older PyTorch omits num_batches_tracked (unused with a
				// fixed momentum); detection LinearNorms have no warm.
				dst := b.I
				todo = append(todo, func() { *dst = 0 })
				defaulted = append(defaulted, b.Name)
				continue
			}
			missing = append(missing, b.Name)
			continue
		}
		used[key] = true
		if b.I != nil {
			if e.Numel() != 1 {
				shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model a scalar", key, e.Shape))
				continue
			}
			v, dst := firstInt(e), b.I
			if strings.HasSuffix(key, ".iter") && v > 0 {
				iterKeys = appendOnce(iterKeys, key)
			}
			todo = append(todo, func() { *dst = v })
			continue
		}
		if e.Numel() != b.F.Size() {
			shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model %v", key, e.Shape, b.F.Shape))
			continue
		}
		t, terr := e.Tensor(key)
		if terr != nil {
			shapes = append(shapes, terr.Error())
			continue
		}
		dst := b.F
		todo = append(todo, func() { copy(dst.Data, t.Data) })
	}
	var unexpected []string
	for k := range state {
		if !used[k] {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(shapes) > 0 {
		sort.Strings(unexpected)
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, fmt.Sprintf("missing %d: %s", len(missing), strings.Join(missing, ", ")))
		}
		if len(unexpected) > 0 {
			parts = append(parts, fmt.Sprintf("unexpected %d: %s", len(unexpected), strings.Join(unexpected, ", ")))
		}
		if len(shapes) > 0 {
			parts = append(parts, fmt.Sprintf("mis-shaped %d: %s", len(shapes), strings.Join(shapes, "; ")))
		}
		return nil, fmt.Errorf("vit: state dict does not fit %s: %s", m.Cfg.Name, strings.Join(parts, "; "))
	}
	for _, f := range todo {
		f()
	}
	if bareIntoLinear {
		for _, l := range m.linearNorms {
			l.Warm, l.Iter = 0, 0
		}
		warnings = append(warnings, fmt.Sprintf("vit: %s: loaded bare RepBN keys into LinearNorm norms: LayerNorm branches keep their initial values and the schedule is set finished (iter 0, pure RepBN)", m.Cfg.Name))
	}
	if len(defaulted) > 0 {
		warnings = append(warnings, fmt.Sprintf("vit: %s: %d counters absent from the state dict were set to 0 (first: %s)", m.Cfg.Name, len(defaulted), defaulted[0]))
	}
	for _, k := range iterKeys {
		warnings = append(warnings, fmt.Sprintf("vit: %s: %s = %d > 0: the PRepBN schedule has not finished (LayerNorm still mixed into training forwards)", m.Cfg.Name, k, firstInt(state[k])))
	}
	return warnings, nil
}

// StateDict exports m's parameters and buffers under their official names:
// parameters and BN statistics as F32, counters (iter, num_batches_tracked,
// ...) as 0-d I64, as PyTorch saves them. Values are copies.
func StateDict(m *Model) map[string]*checkpoint.Entry {
	out := make(map[string]*checkpoint.Entry, len(m.Params())+len(m.Buffers()))
	for _, p := range m.Params() {
		out[p.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, p.W.Shape...), F32: append([]float32(nil), p.W.Data...)}
	}
	for _, b := range m.Buffers() {
		if b.I != nil {
			out[b.Name] = &checkpoint.Entry{DType: "I64", Shape: []int{}, I64: []int64{*b.I}}
			continue
		}
		out[b.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, b.F.Shape...), F32: append([]float32(nil), b.F.Data...)}
	}
	return out
}

// normPrefixes lists the state-dict prefixes of the model's norms.
func (m *Model) normPrefixes() []string {
	ps := make([]string, 0, 2*len(m.Blocks)+1)
	for i := range m.Blocks {
		ps = append(ps, fmt.Sprintf("blocks.%d.norm1", i), fmt.Sprintf("blocks.%d.norm2", i))
	}
	return append(ps, "norm")
}

// bareLNBranch reports whether name belongs to a LinearNorm's LN branch or
// schedule counters, which a bare RepBN state dict does not have.
func bareLNBranch(m *Model, prefixes []string, name string) bool {
	if m.Cfg.Norm != NormPRepBN {
		return false
	}
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(name, p+"."); ok {
			return strings.HasPrefix(rest, "norm1.") || rest == "warm" || rest == "iter" || rest == "total_step"
		}
	}
	return false
}

// hasBare reports whether state holds bare RepBN keys (P.alpha) for the
// first norm prefix.
func hasBare(state map[string]*checkpoint.Entry, prefixes []string) bool {
	_, ok := state[prefixes[0]+".alpha"]
	return ok
}

// stripWrapper removes a "model." or "module." prefix carried by every key.
func stripWrapper(state map[string]*checkpoint.Entry) map[string]*checkpoint.Entry {
	for _, w := range []string{"model.", "module."} {
		all := len(state) > 0
		for k := range state {
			if !strings.HasPrefix(k, w) {
				all = false
				break
			}
		}
		if all {
			out := make(map[string]*checkpoint.Entry, len(state))
			for k, v := range state {
				out[k[len(w):]] = v
			}
			state = out
		}
	}
	return state
}

// squeezeShape drops size-1 leading dimensions only when the shape is a
// scalar-like [1] vs [] mismatch; other shapes compare as they are.
func squeezeShape(s []int) []int {
	if len(s) == 1 && s[0] == 1 {
		return nil
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

func firstInt(e *checkpoint.Entry) int64 {
	v := e.Int64s()
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func appendOnce(s []string, k string) []string {
	for _, x := range s {
		if x == k {
			return s
		}
	}
	return append(s, k)
}

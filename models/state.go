package models

import (
	"fmt"
	"sort"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Alias maps an official state-dict layout onto a model's names: every
// key containing Official is looked up with Official replaced by Ours. An
// Alias with an empty Ours names keys the model does not hold but
// recomputes (attention masks, position indices, RoPE frequencies):
// they are consumed, after Check (when set) has compared them with the
// model's own values.
type Alias struct {
	Official, Ours string
	Check          func(m Model, key string, e *checkpoint.Entry) error
}

// StateDict returns m's parameters and buffers under their official names,
// as PyTorch saves them: parameters and BN statistics F32, counters
// (iter, num_batches_tracked, ...) 0-d I64. Values are copies.
func StateDict(m nn.Module) map[string]*checkpoint.Entry {
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

// LoadState copies a state dict (official layout or slab's own) onto m.
// Names are the model's own, which are the official ones, so most keys map
// 1:1; on top of that, for every family alike:
//
//   - A wrapper prefix "module." or "model." carried by every key is
//     removed (not "model." when the model's own names carry it: LLaMA).
//   - The family's Aliases rename official keys and consume recomputed
//     buffers.
//   - A LinearNorm (PRepBN) accepts a bare RepBN layout P.alpha, P.bn.* for
//     its P.norm2.*: its LayerNorm branch keeps its initial values and its
//     schedule is set finished (pure RepBN), with a warning.
//   - A RepBN accepts a LinearNorm layout: P.norm2.* load into it and the
//     LinearNorm's own keys (P.norm1.*, P.warm, P.iter, P.total_step,
//     P.num_step) are consumed.
//   - Absent num_batches_tracked (older PyTorch) and warm (detection
//     LinearNorms) counters are set to 0, with a warning.
//   - A schedule not finished (iter > 0) gives a warning naming the key.
//   - A parameter or buffer holding NaN or an infinity is refused, naming
//     the first such tensor in model order and the value's position.
//
// Missing, unexpected and mis-shaped keys are collected and reported in ONE
// error naming each; m is left untouched on error. Integer counters may be
// stored as any dtype; floating tensors as F32, F16 or BF16.
func LoadState(m Model, state map[string]*checkpoint.Entry) (warnings []string, err error) {
	return loadState(m, state, false)
}

// loadState is LoadState; release drops each entry's values once they are
// copied into m (checkpoint.Entry.Release), for a loader that read the
// file itself and needs only its metadata afterwards.
func loadState(m Model, state map[string]*checkpoint.Entry, release bool) (warnings []string, err error) {
	var aliases []Alias
	if f, ferr := FamilyOf(m.Family()); ferr == nil {
		aliases = f.Aliases
	}
	state = stripWrapper(m, state)
	used := map[string]bool{}
	var missing, shapes, unexpected, defaulted, iterKeys []string
	var nonFinite error // the first parameter or buffer, in model order, holding NaN or Inf
	for k, e := range state {
		for _, a := range aliases {
			if a.Ours == "" && strings.Contains(k, a.Official) {
				if a.Check != nil {
					if err := a.Check(m, k, e); err != nil {
						shapes = append(shapes, err.Error())
					}
				}
				used[k] = true
			}
		}
	}
	rename := map[string]string{} // our name -> state key
	for k := range state {
		for _, a := range aliases {
			if a.Ours != "" && strings.Contains(k, a.Official) {
				rename[strings.Replace(k, a.Official, a.Ours, 1)] = k
			}
		}
	}
	rules := normRules(m.Norms())
	var bareInto []*nn.LinearNorm
	lookup := func(name string) (string, *checkpoint.Entry) {
		if e, ok := state[name]; ok {
			return name, e
		}
		if k, ok := rename[name]; ok {
			return k, state[k]
		}
		for _, r := range rules {
			rest, ok := strings.CutPrefix(name, r.prefix+".")
			if !ok {
				continue
			}
			switch r.kind {
			case ruleLinearNorm: // ours P.norm2.X <- bare P.X
				if x, ok := strings.CutPrefix(rest, "norm2."); ok {
					if e, ok := state[r.prefix+"."+x]; ok {
						r.bare = true
						return r.prefix + "." + x, e
					}
				}
			case ruleRepBN: // ours P.X <- LinearNorm P.norm2.X
				if e, ok := state[r.prefix+".norm2."+rest]; ok {
					r.fromLinear = true
					return r.prefix + ".norm2." + rest, e
				}
			}
		}
		return "", nil
	}
	var todo []func()
	// uses counts the copies still to come from each entry (an alias may
	// feed two tensors): an entry is released after its last one.
	uses := map[*checkpoint.Entry]int{}
	done := func(e *checkpoint.Entry) {
		if uses[e]--; release && uses[e] == 0 {
			e.Release()
		}
	}
	for _, p := range m.Params() {
		if nn.Stored(p) {
			used[p.Name] = true // held in bf16/int8 only: installed from that entry (quantfile.go)
			continue
		}
		key, e := lookup(p.Name)
		if e == nil {
			if r := ruleOf(rules, p.Name); r != nil && r.bareBranch(p.Name) && bareLayout(state, r.prefix) {
				continue // a bare RepBN layout has no LayerNorm branch: keep init
			}
			missing = append(missing, p.Name)
			continue
		}
		used[key] = true
		if !shapeFits(e.Shape, p.W.Shape) {
			shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model %v", key, e.Shape, p.W.Shape))
			continue
		}
		t, terr := e.Tensor(key)
		if terr != nil {
			shapes = append(shapes, terr.Error())
			continue
		}
		if nonFinite == nil {
			nonFinite = nn.CheckFinite("tensor "+key, t)
		}
		dst, pp, ee := p.W, p, e
		uses[e]++
		todo = append(todo, func() { copy(dst.Data, t.Data); pp.MarkChanged(); done(ee) })
	}
	for _, b := range m.Buffers() {
		key, e := lookup(b.Name)
		if e == nil {
			r := ruleOf(rules, b.Name)
			if r != nil && r.bareBranch(b.Name) && bareLayout(state, r.prefix) {
				if r.ln != nil && !containsLN(bareInto, r.ln) {
					bareInto = append(bareInto, r.ln)
				}
				continue // counters of a bare RepBN layout: set finished below
			}
			if b.I != nil && (strings.HasSuffix(b.Name, ".num_batches_tracked") || strings.HasSuffix(b.Name, ".warm")) {
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
				shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model a scalar counter", key, e.Shape))
				continue
			}
			v, dst := e.Int64s()[0], b.I
			if strings.HasSuffix(key, ".iter") && v > 0 {
				iterKeys = append(iterKeys, fmt.Sprintf("%s = %d", key, v))
			}
			todo = append(todo, func() { *dst = v })
			continue
		}
		if !shapeFits(e.Shape, b.F.Shape) {
			shapes = append(shapes, fmt.Sprintf("%s: checkpoint %v, model %v", key, e.Shape, b.F.Shape))
			continue
		}
		t, terr := e.Tensor(key)
		if terr != nil {
			shapes = append(shapes, terr.Error())
			continue
		}
		if nonFinite == nil {
			nonFinite = nn.CheckFinite("tensor "+key, t)
		}
		dst, ee := b.F, e
		uses[e]++
		todo = append(todo, func() { copy(dst.Data, t.Data); done(ee) })
	}
	// A RepBN loaded from a LinearNorm layout consumes the LinearNorm's own
	// keys; report an unfinished schedule there too.
	for _, r := range rules {
		if r.kind != ruleRepBN || !r.fromLinear {
			continue
		}
		for k, e := range state {
			rest, ok := strings.CutPrefix(k, r.prefix+".")
			if !ok || used[k] {
				continue
			}
			if strings.HasPrefix(rest, "norm1.") || rest == "warm" || rest == "iter" || rest == "total_step" || rest == "num_step" {
				used[k] = true
				if rest == "iter" && e.Numel() == 1 && e.Int64s()[0] > 0 {
					iterKeys = append(iterKeys, fmt.Sprintf("%s = %d", k, e.Int64s()[0]))
				}
			}
		}
	}
	for k := range state {
		if !used[k] {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(shapes) > 0 {
		sort.Strings(unexpected)
		sort.Strings(shapes)
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
		return nil, fmt.Errorf("state dict does not fit %s (%s): %s", modelName(m), m.Family(), strings.Join(parts, "; "))
	}
	if nonFinite != nil {
		// A NaN or infinity in a weight makes every output NaN or wrong:
		// refuse it here rather than evaluate or fold it.
		return nil, fmt.Errorf("%s (%s): %v; refusing non-finite weights", modelName(m), m.Family(), nonFinite)
	}
	for _, f := range todo {
		f()
	}
	for _, l := range bareInto {
		l.Warm, l.Iter = 0, 0
	}
	if len(bareInto) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s: loaded bare RepBN keys into %d PRepBN norms: their LayerNorm branches keep their initial values and their schedules are set finished (iter 0, pure RepBN)", modelName(m), len(bareInto)))
	}
	if len(defaulted) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s: %d counters absent from the state dict were set to 0 (first: %s)", modelName(m), len(defaulted), defaulted[0]))
	}
	if len(iterKeys) > 0 {
		sort.Strings(iterKeys)
		warnings = append(warnings, fmt.Sprintf("%s: the PRepBN schedule has not finished in %d norms (first: %s > 0): training from here still mixes in the LayerNorm branch; evaluation uses RepBN alone", modelName(m), len(iterKeys), iterKeys[0]))
	}
	return warnings, nil
}

// modelName is the model's registry name when its config records one.
func modelName(m Model) string {
	if n, ok := m.Config().(interface{ ModelName() string }); ok && n.ModelName() != "" {
		return n.ModelName()
	}
	return "model"
}

type ruleKind int

const (
	ruleLinearNorm ruleKind = iota + 1
	ruleRepBN
)

// normRule is the layout allowance of one norm (see LoadState).
type normRule struct {
	prefix     string
	kind       ruleKind
	ln         *nn.LinearNorm
	bare       bool // a LinearNorm found bare RepBN keys
	fromLinear bool // a RepBN found LinearNorm keys
}

func normRules(slots []nn.NormSlot) []*normRule {
	var rs []*normRule
	for _, s := range slots {
		switch n := (*s.Norm).(type) {
		case *nn.LinearNorm:
			rs = append(rs, &normRule{prefix: s.Name, kind: ruleLinearNorm, ln: n})
		case *nn.RepBN:
			rs = append(rs, &normRule{prefix: s.Name, kind: ruleRepBN})
		}
	}
	return rs
}

func ruleOf(rs []*normRule, name string) *normRule {
	for _, r := range rs {
		if strings.HasPrefix(name, r.prefix+".") {
			return r
		}
	}
	return nil
}

// bareBranch reports whether name is a LinearNorm's LayerNorm branch or
// schedule counter: what a bare RepBN layout lacks.
func (r *normRule) bareBranch(name string) bool {
	if r.kind != ruleLinearNorm {
		return false
	}
	rest := strings.TrimPrefix(name, r.prefix+".")
	return strings.HasPrefix(rest, "norm1.") || rest == "warm" || rest == "iter" || rest == "total_step" || rest == "num_step"
}

// bareLayout reports whether state holds a bare RepBN at prefix.
func bareLayout(state map[string]*checkpoint.Entry, prefix string) bool {
	_, ok := state[prefix+".alpha"]
	return ok
}

func containsLN(ls []*nn.LinearNorm, l *nn.LinearNorm) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// shapeFits compares shapes, treating [1] and [] as the same scalar.
func shapeFits(a, b []int) bool {
	scalar := func(s []int) bool { return len(s) == 0 || (len(s) == 1 && s[0] == 1) }
	if scalar(a) && scalar(b) {
		return true
	}
	return tensor.ShapeEq(a, b)
}

// stripWrapper removes a "module." or "model." prefix carried by every
// key, unless the model's own names carry it.
func stripWrapper(m Model, state map[string]*checkpoint.Entry) map[string]*checkpoint.Entry {
	ours := func(w string) bool {
		for _, p := range m.Params() {
			if !strings.HasPrefix(p.Name, w) {
				return false
			}
		}
		return len(m.Params()) > 0
	}
	for _, w := range []string{"module.", "model."} {
		if len(state) == 0 || ours(w) {
			continue
		}
		all := true
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

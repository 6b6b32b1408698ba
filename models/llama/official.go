package llama

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/slabml/slab/checkpoint"
)

// LoadState copies an official (HF / SLAB LLaMA) state dict into m. Our
// parameter and buffer names are the official ones, so this is a lookup
// with three allowances: an optional "module." or "model." wrapper is not
// needed (names are matched as they are), rotary_emb.inv_freq buffers are
// checked against our RoPE (HeadDim, base) and otherwise ignored, and
// dtypes F16/BF16/F32 all arrive as float32 through package checkpoint.
// Every parameter and buffer of m must be present with its shape; keys m
// does not know are an error naming the first few, so that loading a
// prepbn checkpoint into an rmsnorm model fails loudly.
func LoadState(m *Model, state map[string]*checkpoint.Entry) error {
	used := map[string]bool{}
	var missing []string
	for _, p := range m.Params() {
		e, ok := state[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if !sameShape(e.Shape, p.W.Shape) || e.F32 == nil {
			return fmt.Errorf("state dict: %s has shape %v (%s), model %s wants %v", p.Name, e.Shape, e.DType, m.Cfg.Name, p.W.Shape)
		}
		copy(p.W.Data, e.F32)
		p.MarkChanged()
		used[p.Name] = true
	}
	for _, b := range m.Buffers() {
		e, ok := state[b.Name]
		if !ok {
			missing = append(missing, b.Name)
			continue
		}
		if b.I != nil {
			if e.Numel() != 1 {
				return fmt.Errorf("state dict: %s has shape %v, want a scalar", b.Name, e.Shape)
			}
			*b.I = e.Int64s()[0]
		} else {
			if !sameShape(e.Shape, b.F.Shape) || e.F32 == nil {
				return fmt.Errorf("state dict: %s has shape %v (%s), model wants %v", b.Name, e.Shape, e.DType, b.F.Shape)
			}
			copy(b.F.Data, e.F32)
		}
		used[b.Name] = true
	}
	if len(missing) > 0 {
		return fmt.Errorf("state dict for %s: %d tensors missing, e.g. %s", m.Cfg.Name, len(missing), strings.Join(first(missing, 3), ", "))
	}
	var extra []string
	for k, e := range state {
		if used[k] {
			continue
		}
		if strings.HasSuffix(k, ".rotary_emb.inv_freq") {
			if err := m.checkInvFreq(k, e); err != nil {
				return err
			}
			continue
		}
		extra = append(extra, k)
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("state dict has %d tensors model %s (norm %s) does not have, e.g. %s", len(extra), m.Cfg.Name, m.Cfg.Norm, strings.Join(first(extra, 3), ", "))
	}
	return nil
}

// checkInvFreq verifies an official RoPE buffer against our table:
// inv_freq[i] = base^(-2i/d).
func (m *Model) checkInvFreq(name string, e *checkpoint.Entry) error {
	d := m.Cfg.HeadDim
	if e.Numel() != d/2 || e.F32 == nil {
		return fmt.Errorf("state dict: %s has %d values, want %d (head dim %d)", name, e.Numel(), d/2, d)
	}
	for i, v := range e.F32 {
		want := invFreq(m.Cfg.RopeBase, i, d)
		if diff := float64(v) - want; diff > 1e-3*want || -diff > 1e-3*want {
			return fmt.Errorf("state dict: %s[%d] = %g, our RoPE (base %g) uses %g", name, i, v, m.Cfg.RopeBase, want)
		}
	}
	return nil
}

// StateDict returns m's parameters and buffers under their official names
// (copies), the inverse of LoadState.
func StateDict(m *Model) map[string]*checkpoint.Entry {
	out := map[string]*checkpoint.Entry{}
	for _, p := range m.Params() {
		out[p.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, p.W.Shape...), F32: append([]float32(nil), p.W.Data...)}
	}
	for _, b := range m.Buffers() {
		if b.I != nil {
			out[b.Name] = &checkpoint.Entry{DType: "I64", Shape: []int{}, I64: []int64{*b.I}}
		} else {
			out[b.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, b.F.Shape...), F32: append([]float32(nil), b.F.Data...)}
		}
	}
	return out
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func invFreq(base float64, i, d int) float64 {
	return math.Pow(base, -float64(2*i)/float64(d))
}

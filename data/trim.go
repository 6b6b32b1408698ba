package data

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// GPT2TrimName names the trimmed GPT-2 tokenizer in checkpoints and flags.
const GPT2TrimName = "gpt2-trim"

// GPT2Trim is GPT-2 BPE with its ids renumbered to a subset of the 50,257:
// the token types that occur in a training text, plus the 256 single-byte
// tokens. The text is split exactly as GPT-2 splits it; a token outside
// the subset (rare: 0.4 % of SOTU's validation tokens) is spelled with the
// single-byte tokens of its bytes, so every text still encodes losslessly.
//
// Why: with a 50k vocabulary the output projection and its softmax are
// two thirds of a small model's training FLOPs. A corpus such as SOTU
// uses fewer than half of GPT-2's types (24,084 in its training split),
// and a type the model never sees in training only ever gets its
// probability pushed down; dropping those rows halves the head's cost and
// changes nothing the model could have learned.
type GPT2Trim struct {
	g     *GPT2
	ids   []int32 // trimmed id -> GPT-2 id, ascending
	index []int32 // GPT-2 id -> trimmed id, -1 when absent
}

// NewGPT2Trim keeps the given GPT-2 ids (any order, repeats allowed) and
// all single-byte tokens.
func NewGPT2Trim(g *GPT2, keep []int) (*GPT2Trim, error) {
	t := &GPT2Trim{g: g, index: make([]int32, len(g.bytes))}
	for i := range t.index {
		t.index[i] = -1
	}
	mark := func(id int) error {
		if id < 0 || id >= len(g.bytes) {
			return fmt.Errorf("%s tokenizer: GPT-2 id %d out of range", GPT2TrimName, id)
		}
		t.index[id] = 0
		return nil
	}
	for _, id := range g.byteID {
		t.index[id] = 0
	}
	for _, id := range keep {
		if err := mark(id); err != nil {
			return nil, err
		}
	}
	for id, v := range t.index {
		if v == 0 {
			t.index[id] = int32(len(t.ids))
			t.ids = append(t.ids, int32(id))
		}
	}
	return t, nil
}

// TrimGPT2 builds the trimmed tokenizer from the token types of s.Train
// (GPT-2 ids) and renumbers all three splits in place.
func TrimGPT2(g *GPT2, s *TextSplits) (*GPT2Trim, error) {
	t, err := NewGPT2Trim(g, s.Train)
	if err != nil {
		return nil, err
	}
	for _, dst := range []*[]int{&s.Train, &s.Validation, &s.Test} {
		*dst = t.Map(*dst)
	}
	return t, nil
}

// Name is "gpt2-trim".
func (*GPT2Trim) Name() string { return GPT2TrimName }

// VocabSize is the number of kept types.
func (t *GPT2Trim) VocabSize() int { return len(t.ids) }

// Encode splits s with GPT-2 and renumbers the ids.
func (t *GPT2Trim) Encode(s string) ([]int, error) {
	ids, err := t.g.Encode(s)
	if err != nil {
		return nil, err
	}
	return t.Map(ids), nil
}

// Map renumbers GPT-2 ids; an id outside the subset becomes the trimmed
// ids of its single bytes. The result may be longer than ids.
func (t *GPT2Trim) Map(ids []int) []int {
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if v := t.index[id]; v >= 0 {
			out = append(out, int(v))
			continue
		}
		for _, b := range t.g.bytes[id] {
			out = append(out, int(t.index[t.g.byteID[b]]))
		}
	}
	return out
}

// TokenBytes appends the raw bytes of trimmed id.
func (t *GPT2Trim) TokenBytes(dst []byte, id int) ([]byte, error) {
	if id < 0 || id >= len(t.ids) {
		return dst, fmt.Errorf("%s tokenizer: id %d out of range [0,%d)", GPT2TrimName, id, len(t.ids))
	}
	return append(dst, t.g.bytes[t.ids[id]]...), nil
}

// Vocab serialises the kept GPT-2 ids for a checkpoint's metadata: the
// ascending ids as decimal gaps ("0 1 1 1 ..."), about 3 bytes per type.
func (t *GPT2Trim) Vocab() string {
	var b strings.Builder
	prev := int32(0)
	for i, id := range t.ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(int(id - prev)))
		prev = id
	}
	return b.String()
}

// ParseGPT2Trim rebuilds the tokenizer from Vocab's string.
func ParseGPT2Trim(vocab string) (*GPT2Trim, error) {
	g, err := NewGPT2()
	if err != nil {
		return nil, err
	}
	var ids []int
	id := 0
	for i, f := range strings.Fields(vocab) {
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 || (i > 0 && d == 0) {
			return nil, fmt.Errorf("%s tokenizer: damaged vocabulary at entry %d (%q)", GPT2TrimName, i, f)
		}
		id += d
		ids = append(ids, id)
	}
	t, err := NewGPT2Trim(g, ids)
	if err != nil {
		return nil, err
	}
	if len(t.ids) != len(ids) || !slices.EqualFunc(t.ids, ids, func(a int32, b int) bool { return int(a) == b }) {
		return nil, fmt.Errorf("%s tokenizer: stored vocabulary lacks single-byte tokens (%d ids, %d after adding them)", GPT2TrimName, len(ids), len(t.ids))
	}
	return t, nil
}

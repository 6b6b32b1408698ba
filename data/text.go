package data

import (
	"fmt"
	"math/rand/v2"
	"os"
	"unicode/utf8"
)

// TextSplits holds the token streams of a language-modelling corpus.
type TextSplits struct {
	Train, Validation, Test []int
}

// LoadTextSplits tokenizes a corpus read by ReadTextSplits.
func LoadTextSplits(source string, tok Tokenizer) (*TextSplits, error) {
	texts, err := ReadTextSplits(source)
	if err != nil {
		return nil, err
	}
	return encodeSplits(source, texts, tok)
}

// ReadTextSplits returns the train, validation and test text of a corpus.
// source "sotu" reads the State of the Union speeches (split by year,
// SOTUSplit); anything else is the path of a UTF-8 text file, split by
// position 90/5/5 (contiguous, so validation text never overlaps a
// training window). A tokenizer built from the training text (the word
// tokenizer) needs the text before any encoding.
func ReadTextSplits(source string) ([3]string, error) {
	var texts [3]string
	if source == "sotu" {
		sp, err := LoadSOTU(SOTUDir())
		if err != nil {
			return texts, err
		}
		for i, name := range []string{"train", "validation", "test"} {
			if texts[i], err = SOTUText(sp, name); err != nil {
				return texts, err
			}
		}
		return texts, nil
	}
	b, err := os.ReadFile(source)
	if err != nil {
		return texts, fmt.Errorf("text corpus: %w", err)
	}
	if !utf8.Valid(b) {
		return texts, fmt.Errorf("text corpus %s: not valid UTF-8", source)
	}
	n := len(b)
	a, c := n*90/100, n*95/100
	return [3]string{string(b[:a]), string(b[a:c]), string(b[c:])}, nil
}

// CheckTextSource reports what ReadTextSplits would find wrong with a
// corpus before reading it: a missing file or a directory ("sotu" is
// checked when read).
func CheckTextSource(source string) error {
	if source == "sotu" {
		return nil
	}
	st, err := os.Stat(source)
	if err == nil && st.IsDir() {
		return fmt.Errorf("text corpus %s is a directory, not a text file", source)
	}
	if err != nil {
		return fmt.Errorf("text corpus: %w", err)
	}
	return nil
}

// encodeSplits tokenizes the three texts of source.
func encodeSplits(source string, texts [3]string, tok Tokenizer) (*TextSplits, error) {
	var out TextSplits
	for i, dst := range []*[]int{&out.Train, &out.Validation, &out.Test} {
		ids, err := tok.Encode(texts[i])
		if err != nil {
			return nil, fmt.Errorf("text corpus %s: %w", source, err)
		}
		*dst = ids
	}
	if len(out.Train) < 2 || len(out.Validation) < 2 {
		return nil, fmt.Errorf("text corpus %s: too little text (%d train, %d validation tokens)", source, len(out.Train), len(out.Validation))
	}
	return &out, nil
}

// Batcher cuts B windows of T+1 tokens from a stream: inputs are the first
// T, targets the last T. Its buffers are reused across batches.
type Batcher struct {
	Stream          []int
	B, T            int
	rng             *rand.Rand
	Inputs, Targets []int
	next            int
}

// NewBatcher returns a batcher drawing windows with a seeded generator.
func NewBatcher(stream []int, B, T int, seed uint64) (*Batcher, error) {
	if B < 1 || T < 1 { // B 0 would never advance a sequential pass
		return nil, fmt.Errorf("batches of %d windows of %d tokens: both must be >= 1", B, T)
	}
	if len(stream) < T+1 {
		return nil, fmt.Errorf("text stream of %d tokens is shorter than one window of %d", len(stream), T+1)
	}
	return &Batcher{Stream: stream, B: B, T: T, rng: rand.New(rand.NewPCG(seed, 1)),
		Inputs: make([]int, B*T), Targets: make([]int, B*T)}, nil
}

// Random fills Inputs/Targets with B windows starting at uniform offsets.
func (b *Batcher) Random() {
	for i := 0; i < b.B; i++ {
		b.fill(i, b.rng.IntN(len(b.Stream)-b.T))
	}
}

// Sequential fills the next B non-overlapping windows from the start of the
// stream and reports false once the stream is exhausted (evaluation: every
// target token is scored once).
func (b *Batcher) Sequential() bool {
	for i := 0; i < b.B; i++ {
		if b.next+b.T+1 > len(b.Stream) {
			return false
		}
		b.fill(i, b.next)
		b.next += b.T
	}
	return true
}

// Reset restarts Sequential at the beginning.
func (b *Batcher) Reset() { b.next = 0 }

func (b *Batcher) fill(i, off int) {
	copy(b.Inputs[i*b.T:(i+1)*b.T], b.Stream[off:off+b.T])
	copy(b.Targets[i*b.T:(i+1)*b.T], b.Stream[off+1:off+b.T+1])
}

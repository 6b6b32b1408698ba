package data

import (
	"fmt"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Tokenizer turns text into token ids and back. TokenBytes exists for
// streaming: a byte-level BPE token may hold part of a UTF-8 character, so
// a generator appends raw bytes and prints only complete characters
// (see StreamDecoder).
type Tokenizer interface {
	Name() string
	VocabSize() int
	Encode(s string) ([]int, error)
	// TokenBytes appends the raw bytes of token id to dst.
	TokenBytes(dst []byte, id int) ([]byte, error)
}

// NewTokenizer returns "byte" or "gpt2". The "gpt2-trim" and "word"
// tokenizers depend on a training text, so they come from LoadNamedSplits
// or TokenizerFromMeta instead.
func NewTokenizer(name string) (Tokenizer, error) {
	switch name {
	case "byte":
		return ByteTokenizer{}, nil
	case "gpt2":
		return NewGPT2()
	case GPT2TrimName, WordName:
		return nil, fmt.Errorf("tokenizer %s is built from the training text (train-lm; data.LoadNamedSplits) and stored in the checkpoint (data.TokenizerFromMeta); it cannot be made on its own", name)
	}
	return nil, CheckTokenizerName(name)
}

// CheckTokenizerName refuses a name no tokenizer answers to (NewTokenizer
// and LoadNamedSplits take the others).
func CheckTokenizerName(name string) error {
	switch name {
	case "byte", "gpt2", GPT2TrimName, WordName:
		return nil
	}
	return fmt.Errorf("unknown tokenizer %q (want byte, gpt2, %s or %s)", name, GPT2TrimName, WordName)
}

// ByteTokenizer maps each byte of the UTF-8 text to its own id (vocab 256):
// no vocabulary file, lossless, and small enough for tiny models to train
// in minutes.
type ByteTokenizer struct{}

// Name is "byte".
func (ByteTokenizer) Name() string { return "byte" }

// VocabSize is 256.
func (ByteTokenizer) VocabSize() int { return 256 }

// Encode returns one id per byte.
func (ByteTokenizer) Encode(s string) ([]int, error) {
	ids := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		ids[i] = int(s[i])
	}
	return ids, nil
}

// TokenBytes appends the byte id.
func (ByteTokenizer) TokenBytes(dst []byte, id int) ([]byte, error) {
	if id < 0 || id > 255 {
		return dst, fmt.Errorf("byte tokenizer: id %d out of range", id)
	}
	return append(dst, byte(id)), nil
}

// GPT2 is OpenAI's GPT-2 byte-level BPE (r50k_base, 50257 ids) from
// github.com/tiktoken-go/tokenizer, whose vocabulary is compiled into the
// binary: nothing to download at run time.
type GPT2 struct {
	c      tokenizer.Codec
	bytes  [][]byte   // raw bytes of every id, built once so decoding never allocates
	byteID [256]int32 // the id of each single-byte token (byte-level BPE has all 256)
}

// gpt2EOT is GPT-2's <|endoftext|> id.
const gpt2EOT = 50256

// NewGPT2 loads the codec and its byte table.
func NewGPT2() (*GPT2, error) {
	c, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return nil, fmt.Errorf("gpt2 tokenizer: %w", err)
	}
	c.SetErrorMode(tokenizer.ErrorModeNone)
	g := &GPT2{c: c, bytes: make([][]byte, 50257)}
	for id := range g.bytes {
		s, err := c.Decode([]uint{uint(id)})
		if id == gpt2EOT {
			// The codec does not decode its special token.
			s, err = "<|endoftext|>", nil
		}
		if err != nil {
			return nil, fmt.Errorf("gpt2 tokenizer: id %d: %w", id, err)
		}
		g.bytes[id] = []byte(s)
	}
	var seen [256]bool
	for id, b := range g.bytes {
		if len(b) == 1 && id != gpt2EOT {
			g.byteID[b[0]], seen[b[0]] = int32(id), true
		}
	}
	for b, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("gpt2 tokenizer: no token for byte %#x", b)
		}
	}
	return g, nil
}

// Name is "gpt2".
func (*GPT2) Name() string { return "gpt2" }

// VocabSize is 50257.
func (g *GPT2) VocabSize() int { return len(g.bytes) }

// Encode tokenizes s; special tokens are treated as text.
func (g *GPT2) Encode(s string) ([]int, error) {
	u, _, err := g.c.Encode(s)
	if err != nil {
		return nil, fmt.Errorf("gpt2 tokenizer: %w", err)
	}
	ids := make([]int, len(u))
	for i, v := range u {
		ids[i] = int(v)
	}
	return ids, nil
}

// TokenBytes appends the raw bytes of id.
func (g *GPT2) TokenBytes(dst []byte, id int) ([]byte, error) {
	if id < 0 || id >= len(g.bytes) {
		return dst, fmt.Errorf("gpt2 tokenizer: id %d out of range [0,%d)", id, len(g.bytes))
	}
	return append(dst, g.bytes[id]...), nil
}

// Decode returns the text of ids (invalid UTF-8 left as is).
func Decode(t Tokenizer, ids []int) (string, error) {
	var b []byte
	var err error
	for _, id := range ids {
		if b, err = t.TokenBytes(b, id); err != nil {
			return "", err
		}
	}
	return string(b), nil
}

// StreamDecoder turns a token stream into complete UTF-8 text: Push returns
// the bytes that now form whole characters and keeps an incomplete tail.
// Its buffer is reused, so streaming allocates nothing per token.
type StreamDecoder struct {
	T       Tokenizer
	pending []byte
	out     []byte
}

// Push adds a token and returns printable bytes (valid until the next Push).
func (s *StreamDecoder) Push(id int) ([]byte, error) {
	var err error
	if s.pending, err = s.T.TokenBytes(s.pending, id); err != nil {
		return nil, err
	}
	// Find the longest prefix that does not end inside a character; a
	// broken sequence that can no longer complete is flushed as is.
	n := len(s.pending)
	cut := n
	for i := n - 1; i >= 0 && i >= n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s.pending[i]) {
			if !utf8.FullRune(s.pending[i:]) {
				cut = i
			}
			break
		}
	}
	s.out = append(s.out[:0], s.pending[:cut]...)
	s.pending = append(s.pending[:0], s.pending[cut:]...)
	return s.out, nil
}

// Flush returns whatever bytes are still pending.
func (s *StreamDecoder) Flush() []byte {
	s.out = append(s.out[:0], s.pending...)
	s.pending = s.pending[:0]
	return s.out
}

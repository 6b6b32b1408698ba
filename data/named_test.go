package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNamedTokenizers: LoadNamedSplits builds the word vocabulary from the
// training split, TokenizerMeta/TokenizerFromMeta restore a tokenizer that
// encodes the same ids, and the learned tokenizers refuse to be made by
// name alone.
func TestNamedTokenizers(t *testing.T) {
	text := strings.Repeat("The cat sat on the mat. The dog didn't.\nA cat, a dog.\n", 60)
	path := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"byte", WordName} {
		tok, sp, err := LoadNamedSplits(path, name)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Name() != name {
			t.Errorf("%s: built %s", name, tok.Name())
		}
		meta := TokenizerMeta(tok)
		back, err := TokenizerFromMeta(meta)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := back.Encode(text[:200])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tok.Encode(text[:200])
		if !slices.Equal(ids, want) || back.VocabSize() != tok.VocabSize() {
			t.Errorf("%s: restored tokenizer differs (vocab %d vs %d)", name, back.VocabSize(), tok.VocabSize())
		}
		if len(sp.Train) == 0 || len(sp.Validation) == 0 {
			t.Errorf("%s: empty splits", name)
		}
		t.Logf("%s: vocab %d, %d train tokens", name, tok.VocabSize(), len(sp.Train))
	}
	if _, err := NewTokenizer(WordName); err == nil {
		t.Error("NewTokenizer(word) without a vocabulary")
	}
	if _, err := TokenizerFromMeta(map[string]string{"tokenizer": WordName}); err == nil || !strings.Contains(err.Error(), "tokenizer_vocab") {
		t.Errorf("word tokenizer without its vocabulary: %v", err)
	}
}

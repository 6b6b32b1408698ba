package data

import "fmt"

// Tokenizers with a vocabulary learned from the training text (word,
// gpt2-trim) cannot be made by name alone: LoadNamedSplits builds them from
// a corpus and TokenizerFromMeta restores them from the metadata a
// checkpoint stores (TokenizerMeta). The fixed ones (byte, gpt2) go
// through NewTokenizer in all three.

// LoadNamedSplits reads a corpus (as ReadTextSplits) and encodes it with
// the named tokenizer, building a learned vocabulary from the training
// split: "word" keeps words seen at least DefaultWordMinCount times,
// "gpt2-trim" the GPT-2 token types of the training text.
func LoadNamedSplits(source, name string) (Tokenizer, *TextSplits, error) {
	switch name {
	case WordName:
		sp, tok, err := LoadWordSplits(source, DefaultWordMinCount)
		if err != nil {
			return nil, nil, err
		}
		return tok, sp, nil
	case GPT2TrimName:
		g, err := NewGPT2()
		if err != nil {
			return nil, nil, err
		}
		sp, err := LoadTextSplits(source, g)
		if err != nil {
			return nil, nil, err
		}
		t, err := TrimGPT2(g, sp)
		if err != nil {
			return nil, nil, err
		}
		return t, sp, nil
	}
	tok, err := NewTokenizer(name)
	if err != nil {
		return nil, nil, err
	}
	sp, err := LoadTextSplits(source, tok)
	if err != nil {
		return nil, nil, err
	}
	return tok, sp, nil
}

// TokenizerMeta returns the checkpoint metadata that restores tok:
// "tokenizer" (its name) and, for a learned vocabulary, "tokenizer_vocab".
func TokenizerMeta(tok Tokenizer) map[string]string {
	m := map[string]string{"tokenizer": tok.Name()}
	switch t := tok.(type) {
	case *WordTokenizer:
		m["tokenizer_vocab"] = t.Vocab()
	case *GPT2Trim:
		m["tokenizer_vocab"] = t.Vocab()
	}
	return m
}

// TokenizerFromMeta rebuilds a checkpoint's tokenizer from the metadata
// TokenizerMeta wrote.
func TokenizerFromMeta(meta map[string]string) (Tokenizer, error) {
	name := meta["tokenizer"]
	switch name {
	case WordName, GPT2TrimName:
		v, ok := meta["tokenizer_vocab"]
		if !ok {
			return nil, fmt.Errorf("tokenizer %s: the checkpoint has no tokenizer_vocab metadata", name)
		}
		if name == WordName {
			return ParseWordTokenizer(v)
		}
		return ParseGPT2Trim(v)
	}
	return NewTokenizer(name)
}

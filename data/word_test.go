package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func splitAll(s string) []string {
	var out []string
	SplitWords(s, func(tok string) { out = append(out, tok) })
	return out
}

// TestSplitWords pins every rule of the word splitting on examples.
func TestSplitWords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Hello, world!", "Hello , world ! <eos>"},
		{"role-playing game", "role @-@ playing game <eos>"},
		{"$1,000,000.50 and 3.5%", "$ 1 @,@ 000 @,@ 000 @.@ 50 and 3 @.@ 5 % <eos>"},
		{"don't can't it's We'll I'M they’re isn’t", "do n't ca n't it 's We 'll I 'M they ’re is n’t <eos>"},
		{"o'clock O'Neill's Jones' 'tis", "o'clock O'Neill 's Jones ' ' tis <eos>"},
		{"the U.S. Army, e.g., U.S.", "the U.S. Army , e.g. , U.S. <eos>"},
		{"end. (Applause.) wait...!? --yes", "end . ( Applause . ) wait ... ! ? -- yes <eos>"},
		{"President—(applause)—no", "President — ( applause ) — no <eos>"},
		{"1790–2021 the 1990s", "1790 – 2021 the 1990s <eos>"},
		{"a\n\n  \nb c\r\nd", "a <eos> b c <eos> d <eos>"},
		{"tokenised : it 's n't @-@ <unk> 's", "tokenised : it 's n't @-@ <unk> 's <eos>"},
		{"'s", "'s <eos>"},
		{"naïve café", "naïve café <eos>"},
		{"", ""},
		{"\n\n", ""},
	} {
		got := strings.Join(splitAll(tc.in), " ")
		if got != tc.want {
			t.Errorf("SplitWords(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestWordTokenizer: counts, the <unk> threshold, frequency order with
// ties by word, specials placed by their counts, encode/decode, OOV and
// the JSON round trip.
func TestWordTokenizer(t *testing.T) {
	train := "the cat sat on the mat .\nthe dog sat .\nthe end .\na b"
	// the 4, . 3, <eos> 4, sat 2, cat/on/mat/dog/end/a/b 1
	tok, err := BuildWordTokenizer(train, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"<unk>", "<eos>", "the", ".", "sat"} // <unk>: 7 words once
	if !slices.Equal(tok.words, want) {
		t.Fatalf("vocabulary %q, want %q", tok.words, want)
	}
	if !slices.Equal(tok.counts, []int64{7, 4, 4, 3, 2}) {
		t.Fatalf("counts %v", tok.counts)
	}
	if tok.Unk() != 0 || tok.EOS() != 1 || tok.VocabSize() != 5 || tok.MinCount() != 2 {
		t.Fatalf("unk %d eos %d size %d min %d", tok.Unk(), tok.EOS(), tok.VocabSize(), tok.MinCount())
	}
	ids, _ := tok.Encode("the bird sat .")
	if !slices.Equal(ids, []int{2, 0, 4, 3, 1}) {
		t.Fatalf("Encode = %v", ids)
	}
	if s, _ := Decode(tok, ids); s != " the <unk> sat .\n" {
		t.Fatalf("Decode = %q", s)
	}
	if oov, total := tok.OOV("the bird sat .\n<unk> the"); oov != 2 || total != 8 {
		t.Fatalf("OOV = %d/%d, want 2/8", oov, total)
	}
	back, err := ParseWordTokenizer(tok.Vocab())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.words, tok.words) || !slices.Equal(back.counts, tok.counts) || back.MinCount() != 2 || back.Unk() != 0 || back.EOS() != 1 {
		t.Fatal("vocabulary changed in the JSON round trip")
	}
	for _, bad := range []string{
		`{"min_count":3,"words":["<unk>","<eos>"],"counts":[1]}`,
		`{"min_count":3,"words":["<unk>","a"],"counts":[2,1]}`,
		`{"min_count":3,"words":["<unk>","<eos>","a"],"counts":[1,2,0]}`,
		`{"min_count":3,"words":["<unk>","<eos>","a b"],"counts":[2,1,0]}`,
		`{"min_count":3,"words":["<eos>","<unk>","a","a"],"counts":[2,1,0,0]}`,
		`{"min_count":0,"words":["<unk>","<eos>"],"counts":[2,1]}`,
		`[1,2`,
	} {
		if _, err := ParseWordTokenizer(bad); err == nil {
			t.Errorf("damaged vocabulary accepted: %s", bad)
		}
	}
	if _, err := tok.TokenBytes(nil, 5); err == nil {
		t.Error("out-of-range id accepted")
	}
	if _, err := BuildWordTokenizer(train, 0); err == nil {
		t.Error("minimum count 0 accepted")
	}
	// Ties broken by the word: all counts 1 at min count 1.
	tok1, _ := BuildWordTokenizer("b a c", 1)
	if !slices.Equal(tok1.words, []string{"<eos>", "a", "b", "c", "<unk>"}) {
		t.Fatalf("ties: %q", tok1.words)
	}
}

// TestLoadWordSplits: the vocabulary comes from the training part of a
// text file only, and all three parts are encoded with it.
func TestLoadWordSplits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corpus.txt")
	// 90/5/5 by bytes: the last 10 % hold words the training part lacks.
	text := strings.Repeat("the cat sat on the mat .\n", 36) + "zebra zebra zebra zebra zebra zebra ."
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, tok, err := LoadWordSplits(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.ID("zebra"); ok {
		t.Fatal("a word of the held-out parts entered the vocabulary")
	}
	for _, id := range sp.Train {
		if id == tok.Unk() {
			t.Fatal("<unk> in a training split whose words all occur 36 times")
		}
	}
	if !slices.Contains(sp.Test, tok.Unk()) {
		t.Fatal("the unseen word of the test part is not <unk>")
	}
	if _, _, err := LoadWordSplits(filepath.Join(t.TempDir(), "missing.txt"), 3); err == nil {
		t.Error("missing file accepted")
	}
}

// TestDetokenize: typical prose survives tokenisation and detokenisation.
func TestDetokenize(t *testing.T) {
	text := "It's $1,000 for the U.S. Army (roughly 3.5%), isn't it? Role-playing; yes.\nNext line: \"quoted\" text."
	tok, err := BuildWordTokenizer(text, 1)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := tok.Encode(text)
	got, err := tok.Detokenize(ids)
	if err != nil {
		t.Fatal(err)
	}
	// Quotes keep their spaces: an opening and a closing '"' look alike.
	if want := strings.Replace(text, `"quoted"`, `" quoted "`, 1) + "\n"; got != want {
		t.Fatalf("Detokenize\n got %q\nwant %q", got, want)
	}
}

// TestSOTUWordVocabulary reports the vocabulary size and the validation
// out-of-vocabulary rate of the State of the Union corpus at min count 3,
// and the add-one bigram perplexity, when scripts/fetch-sotu.sh has run.
func TestSOTUWordVocabulary(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole corpus")
	}
	texts, err := ReadTextSplits("sotu")
	if err != nil {
		t.Skip(err)
	}
	tok, err := BuildWordTokenizer(texts[0], DefaultWordMinCount)
	if err != nil {
		t.Fatal(err)
	}
	oov, total := tok.OOV(texts[1])
	rate := float64(oov) / float64(total)
	t.Logf("SOTU words, min count %d: vocabulary %d (<unk> id %d, <eos> id %d); validation %d tokens, %d OOV = %.2f %%",
		tok.MinCount(), tok.VocabSize(), tok.Unk(), tok.EOS(), total, oov, 100*rate)
	if tok.VocabSize() < 5000 || rate <= 0 || rate > 0.1 {
		t.Fatalf("implausible: vocabulary %d, OOV rate %.3f", tok.VocabSize(), rate)
	}
	train, _ := tok.Encode(texts[0])
	val, _ := tok.Encode(texts[1])
	bg, err := NewBigram(train, tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	ppl, n, err := bg.Perplexity(val)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("add-one bigram: validation perplexity %.1f over %d tokens (train %d tokens)", ppl, n, len(train))
}

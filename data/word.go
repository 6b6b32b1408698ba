package data

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Word-level tokenisation in the spirit of Wikitext-103, the corpus of the
// adaptive-input language model (Baevski & Auli 2019): words and
// punctuation marks are tokens, numbers and hyphenated words are split
// with Wikitext's @-@, @,@ and @.@ markers, clitics are split off as in
// the Penn Treebank ("do n't", "it 's"), every line ends with <eos>, and
// words rarer than a minimum count in the training text become <unk>.
//
// The rule, exactly (SplitWords):
//
//  1. The text is cut into lines at '\n'. A line that yields at least one
//     token ends with the token <eos>; blank lines yield nothing (Wikitext
//     marks its paragraphs with blank lines; one <eos> per paragraph is the
//     signal, a second one for the blank line would be noise).
//  2. A line is cut into chunks at whitespace and control characters
//     (unicode.IsSpace, unicode.IsControl, U+FEFF).
//  3. A chunk that is exactly <unk>, <eos>, @-@, @,@ or @.@ is that token,
//     so text that is already tokenised (Wikitext itself) reads back as is.
//  4. Otherwise a chunk is scanned left to right. Word characters are
//     letters, numbers and combining marks (Unicode L, N, M). A word is a
//     maximal run of them that also continues across
//     - one apostrophe (' or U+2019) between two word characters
//     ("o'clock", "don't"), and
//     - one '.' between two letters ("U.S", "e.g"); a word holding such a
//     period also takes a '.' that directly follows a letter ("U.S.").
//  5. A word ending in a clitic is cut before it: "n't" when something
//     precedes it ("don't" -> do n't, "can't" -> ca n't), else an apostrophe
//     followed by s, re, ve, ll, d or m in any case ("it's" -> it 's,
//     "We'll" -> We 'll). The apostrophe keeps its character (' or U+2019).
//  6. Right after a word: '-' followed by a word character is the token
//     @-@ ("role-playing" -> role @-@ playing); ',' or '.' between two
//     digits is @,@ or @.@ ("1,000.5" -> 1 @,@ 000 @.@ 5).
//  7. An apostrophe that does not follow a word character and starts one
//     of the clitics of rule 5 followed by a non-word character or the end
//     of the chunk is that clitic token ("'s" written alone).
//  8. Any other character is punctuation; a run of one repeated character
//     is one token ("--", "...", "!!"), different characters are separate
//     tokens ("?!" -> ? !).
//
// Case and the characters themselves are kept (no lower-casing, no
// Unicode normalisation): Wikitext keeps case too. So the tokens of a text
// are substrings of it, plus the markers and <eos>.

// WordName names the word tokenizer in checkpoints and flags.
const WordName = "word"

// DefaultWordMinCount is the minimum training count of a vocabulary word;
// rarer words become <unk> (Wikitext-103 used 3).
const DefaultWordMinCount = 3

// The special tokens of the word tokenizer.
const (
	UnkToken = "<unk>"
	EOSToken = "<eos>"
)

// SplitWords calls emit with every token of text in order (see the rule
// above); <eos> is passed as EOSToken. The strings are substrings of text
// or constants, so splitting allocates nothing per token.
func SplitWords(text string, emit func(tok string)) {
	var s wordSplitter
	for len(text) > 0 {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if s.line(line, emit) {
			emit(EOSToken)
		}
	}
}

// wordSplitter holds the rune scratch of a chunk so that a corpus is
// split with a handful of allocations.
type wordSplitter struct {
	rs  []rune
	off []int // byte offset of rs[i] in the chunk; off[len(rs)] = len(chunk)
}

// line emits the tokens of one line and reports whether there were any.
func (s *wordSplitter) line(line string, emit func(string)) bool {
	found := false
	start := -1
	for i, r := range line {
		if isWordSep(r) {
			if start >= 0 {
				s.chunk(line[start:i], emit)
				found, start = true, -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		s.chunk(line[start:], emit)
		found = true
	}
	return found
}

func isWordSep(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\uFEFF' }

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) }

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// chunk emits the tokens of a whitespace-free chunk (rules 3-8).
func (s *wordSplitter) chunk(c string, emit func(string)) {
	switch c {
	case UnkToken, EOSToken, "@-@", "@,@", "@.@":
		emit(c)
		return
	}
	s.rs, s.off = s.rs[:0], s.off[:0]
	for i, r := range c {
		s.rs = append(s.rs, r)
		s.off = append(s.off, i)
	}
	s.off = append(s.off, len(c))
	rs, off := s.rs, s.off
	n := len(rs)
	word := func(i int) bool { return i >= 0 && i < n && isWordRune(rs[i]) }
	letter := func(i int) bool { return i >= 0 && i < n && unicode.IsLetter(rs[i]) }
	digit := func(i int) bool { return i >= 0 && i < n && unicode.IsDigit(rs[i]) }
	for i := 0; i < n; {
		r := rs[i]
		switch {
		case isWordRune(r):
			j, dotted := i+1, false
			for j < n {
				if word(j) || (isApostrophe(rs[j]) && word(j+1)) {
					j++
				} else if rs[j] == '.' && letter(j-1) && letter(j+1) {
					j, dotted = j+1, true
				} else {
					break
				}
			}
			if dotted && j < n && rs[j] == '.' && letter(j-1) {
				j++
			}
			emitWord(c[off[i]:off[j]], emit)
			i = j
			if i < n && word(i-1) && word(i+1) {
				switch {
				case rs[i] == '-':
					emit("@-@")
					i++
				case rs[i] == ',' && digit(i-1) && digit(i+1):
					emit("@,@")
					i++
				case rs[i] == '.' && digit(i-1) && digit(i+1):
					emit("@.@")
					i++
				}
			}
		case isApostrophe(r) && !word(i-1) && s.cliticAt(c, i):
			k := i + 1
			for letter(k) {
				k++
			}
			emit(c[off[i]:off[k]])
			i = k
		default:
			j := i + 1
			for j < n && rs[j] == r {
				j++
			}
			emit(c[off[i]:off[j]])
			i = j
		}
	}
}

// cliticAt reports whether the apostrophe at rune i starts a clitic that
// ends at a non-word character or the end of the chunk (rule 7).
func (s *wordSplitter) cliticAt(c string, i int) bool {
	k := i + 1
	for k < len(s.rs) && unicode.IsLetter(s.rs[k]) {
		k++
	}
	if k == i+1 || (k < len(s.rs) && isWordRune(s.rs[k])) {
		return false
	}
	return isClitic(c[s.off[i+1]:s.off[k]])
}

// isClitic reports whether the letters after an apostrophe form one of
// the clitics of rule 5.
func isClitic(s string) bool {
	switch strings.ToLower(s) {
	case "s", "re", "ve", "ll", "d", "m":
		return true
	}
	return false
}

// emitWord emits a word, cutting a trailing clitic off (rule 5).
func emitWord(w string, emit func(string)) {
	for _, nt := range [...]string{"n't", "n\u2019t"} {
		if len(w) > len(nt) && strings.EqualFold(w[len(w)-len(nt):], nt) {
			emit(w[:len(w)-len(nt)])
			emit(w[len(w)-len(nt):])
			return
		}
	}
	if p := strings.LastIndexAny(w, "'\u2019"); p > 0 {
		_, size := utf8.DecodeRuneInString(w[p:])
		if isClitic(w[p+size:]) {
			emit(w[:p])
			emit(w[p:])
			return
		}
	}
	emit(w)
}

// WordTokenizer is the word-level tokenizer: the vocabulary of a training
// text's tokens seen at least MinCount times, plus <unk> (every rarer or
// unseen word) and <eos> (line ends). Ids are sorted by training count,
// most frequent first, ties by the word's bytes, so the specials sit where
// their counts put them (<unk> counts the occurrences of all words it
// replaced): the cut-offs of an adaptive input or softmax then split the
// vocabulary into frequency bands.
type WordTokenizer struct {
	words    []string
	counts   []int64
	minCount int
	index    map[string]int32
	unk, eos int
}

// BuildWordTokenizer counts the tokens of train and keeps those seen at
// least minCount times (DefaultWordMinCount in Wikitext's recipe).
func BuildWordTokenizer(train string, minCount int) (*WordTokenizer, error) {
	if minCount < 1 {
		return nil, fmt.Errorf("%s tokenizer: minimum count %d, want >= 1", WordName, minCount)
	}
	counts := map[string]int64{UnkToken: 0, EOSToken: 0}
	SplitWords(train, func(tok string) {
		if _, ok := counts[tok]; !ok {
			// A key must not pin the whole training text in memory.
			tok = strings.Clone(tok)
		}
		counts[tok]++
	})
	words := make([]string, 0, len(counts))
	for w, c := range counts {
		if c >= int64(minCount) || w == UnkToken || w == EOSToken {
			words = append(words, w)
		} else {
			counts[UnkToken] += c
		}
	}
	vc := make([]int64, len(words))
	sortVocab(words, counts)
	for i, w := range words {
		vc[i] = counts[w]
	}
	return newWordTokenizer(words, vc, minCount)
}

// sortVocab orders words by count, descending, ties by the word's bytes.
func sortVocab(words []string, counts map[string]int64) {
	slices.SortFunc(words, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// newWordTokenizer indexes a vocabulary in id order and checks it.
func newWordTokenizer(words []string, counts []int64, minCount int) (*WordTokenizer, error) {
	if len(words) != len(counts) {
		return nil, fmt.Errorf("%s tokenizer: %d words but %d counts", WordName, len(words), len(counts))
	}
	if minCount < 1 {
		return nil, fmt.Errorf("%s tokenizer: minimum count %d, want >= 1", WordName, minCount)
	}
	t := &WordTokenizer{words: words, counts: counts, minCount: minCount,
		index: make(map[string]int32, len(words)), unk: -1, eos: -1}
	for i, w := range words {
		if w == "" || strings.IndexFunc(w, isWordSep) >= 0 {
			return nil, fmt.Errorf("%s tokenizer: word %d (%q) is empty or holds whitespace", WordName, i, w)
		}
		if _, dup := t.index[w]; dup {
			return nil, fmt.Errorf("%s tokenizer: word %q appears twice", WordName, w)
		}
		if i > 0 && (counts[i] > counts[i-1] || (counts[i] == counts[i-1] && w < words[i-1])) {
			return nil, fmt.Errorf("%s tokenizer: word %d (%q, count %d) out of frequency order", WordName, i, w, counts[i])
		}
		t.index[w] = int32(i)
	}
	u, okU := t.index[UnkToken]
	e, okE := t.index[EOSToken]
	if !okU || !okE {
		return nil, fmt.Errorf("%s tokenizer: vocabulary lacks %s or %s", WordName, UnkToken, EOSToken)
	}
	t.unk, t.eos = int(u), int(e)
	return t, nil
}

// Name is "word".
func (*WordTokenizer) Name() string { return WordName }

// VocabSize is the number of words, <unk> and <eos> included.
func (t *WordTokenizer) VocabSize() int { return len(t.words) }

// MinCount is the training count a word needed to enter the vocabulary.
func (t *WordTokenizer) MinCount() int { return t.minCount }

// Unk is the id of <unk>.
func (t *WordTokenizer) Unk() int { return t.unk }

// EOS is the id of <eos>.
func (t *WordTokenizer) EOS() int { return t.eos }

// Word returns the token of id ("" when out of range).
func (t *WordTokenizer) Word(id int) string {
	if id < 0 || id >= len(t.words) {
		return ""
	}
	return t.words[id]
}

// Count returns the training count of id (for <unk>, of all the words it
// replaced).
func (t *WordTokenizer) Count(id int) int64 {
	if id < 0 || id >= len(t.counts) {
		return 0
	}
	return t.counts[id]
}

// ID returns the id of a token and whether it is in the vocabulary.
func (t *WordTokenizer) ID(tok string) (int, bool) {
	id, ok := t.index[tok]
	return int(id), ok
}

// Encode splits s (SplitWords) and maps every token to its id, unknown
// ones to <unk>. It never fails; the error is the Tokenizer interface's.
func (t *WordTokenizer) Encode(s string) ([]int, error) {
	var ids []int
	SplitWords(s, func(tok string) {
		id, ok := t.index[tok]
		if !ok {
			id = int32(t.unk)
		}
		ids = append(ids, int(id))
	})
	return ids, nil
}

// TokenBytes appends the text of id as the stream decoder prints it: a
// space and the token, or a newline for <eos>. Decoding thus gives the
// tokenised text (Wikitext's own form); Detokenize gives readable text.
func (t *WordTokenizer) TokenBytes(dst []byte, id int) ([]byte, error) {
	if id < 0 || id >= len(t.words) {
		return dst, fmt.Errorf("%s tokenizer: id %d out of range [0,%d)", WordName, id, len(t.words))
	}
	if id == t.eos {
		return append(dst, '\n'), nil
	}
	dst = append(dst, ' ')
	return append(dst, t.words[id]...), nil
}

// Detokenize joins the tokens of ids into readable text, undoing the
// splitting rules where they are unambiguous: markers become '-', ',' and
// '.' without spaces, clitics and closing punctuation attach to the word
// before, opening brackets and '$' to the word after, <eos> is a newline.
// Quotes keep their spaces (an opening and a closing '"' look the same).
func (t *WordTokenizer) Detokenize(ids []int) (string, error) {
	var b strings.Builder
	glue := true // no space before the next token
	for _, id := range ids {
		if id < 0 || id >= len(t.words) {
			return "", fmt.Errorf("%s tokenizer: id %d out of range [0,%d)", WordName, id, len(t.words))
		}
		if id == t.eos {
			b.WriteByte('\n')
			glue = true
			continue
		}
		w := t.words[id]
		left, right := attachLeft(w), false
		switch w {
		case "@-@", "@,@", "@.@":
			w, left, right = w[1:2], true, true
		case "(", "[", "{", "$":
			right = true
		}
		if !glue && !left {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		glue = right
	}
	return b.String(), nil
}

// attachLeft reports whether a token is written without a space before it.
func attachLeft(w string) bool {
	switch w {
	case ",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "...":
		return true
	}
	r, size := utf8.DecodeRuneInString(w)
	if isApostrophe(r) && isClitic(w[size:]) {
		return true
	}
	return strings.EqualFold(w, "n't") || strings.EqualFold(w, "n\u2019t")
}

// OOV counts the tokens of text (SplitWords, <eos> included) that map to
// <unk>: words outside the vocabulary and literal <unk> tokens. The
// out-of-vocabulary rate of a split is oov/total.
func (t *WordTokenizer) OOV(text string) (oov, total int) {
	SplitWords(text, func(tok string) {
		total++
		if id, ok := t.index[tok]; !ok || int(id) == t.unk {
			oov++
		}
	})
	return oov, total
}

// wordVocabJSON is the serialised vocabulary, in id order.
type wordVocabJSON struct {
	MinCount int      `json:"min_count"`
	Words    []string `json:"words"`
	Counts   []int64  `json:"counts"`
}

// Vocab serialises the tokenizer for a checkpoint's metadata: JSON with the
// minimum count, the words in id order and their training counts (the
// counts make the frequency order checkable and the bands inspectable).
func (t *WordTokenizer) Vocab() string {
	b, err := json.Marshal(wordVocabJSON{MinCount: t.minCount, Words: t.words, Counts: t.counts})
	if err != nil {
		// Strings and integers always marshal.
		panic(err)
	}
	return string(b)
}

// ParseWordTokenizer rebuilds the tokenizer from Vocab's string, checking
// that it is a vocabulary this package could have built.
func ParseWordTokenizer(vocab string) (*WordTokenizer, error) {
	var v wordVocabJSON
	if err := json.Unmarshal([]byte(vocab), &v); err != nil {
		return nil, fmt.Errorf("%s tokenizer: damaged vocabulary: %w", WordName, err)
	}
	return newWordTokenizer(v.Words, v.Counts, v.MinCount)
}

// LoadWordSplits reads a corpus as ReadTextSplits does, builds the word
// vocabulary from its training split (minCount as in BuildWordTokenizer)
// and encodes all three splits with it.
func LoadWordSplits(source string, minCount int) (*TextSplits, *WordTokenizer, error) {
	texts, err := ReadTextSplits(source)
	if err != nil {
		return nil, nil, err
	}
	tok, err := BuildWordTokenizer(texts[0], minCount)
	if err != nil {
		return nil, nil, fmt.Errorf("text corpus %s: %w", source, err)
	}
	sp, err := encodeSplits(source, texts, tok)
	if err != nil {
		return nil, nil, err
	}
	return sp, tok, nil
}

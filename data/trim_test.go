package data

import (
	"slices"
	"testing"
)

// TestGPT2Trim: a vocabulary trimmed to one sentence's types encodes that
// sentence with the same segmentation as GPT-2, spells unseen words with
// single-byte tokens, decodes every text losslessly and survives the
// metadata round trip.
func TestGPT2Trim(t *testing.T) {
	g, err := NewGPT2()
	if err != nil {
		t.Fatal(err)
	}
	train := "Fellow-Citizens of the Senate and House of Representatives:"
	full, _ := g.Encode(train)
	sp := &TextSplits{Train: slices.Clone(full), Validation: []int{15496, 995}} // "Hello world"
	tr, err := TrimGPT2(g, sp)
	if err != nil {
		t.Fatal(err)
	}
	types := map[int]bool{}
	for _, id := range full {
		types[id] = true
	}
	nByteOnly := 0
	for id := range types {
		if len(g.bytes[id]) == 1 {
			nByteOnly++
		}
	}
	if want := 256 + len(types) - nByteOnly; tr.VocabSize() != want {
		t.Fatalf("vocab %d, want %d (256 bytes + %d multi-byte types)", tr.VocabSize(), want, len(types)-nByteOnly)
	}
	// Same segmentation: one trimmed id per GPT-2 id, same bytes.
	if len(sp.Train) != len(full) {
		t.Fatalf("train split re-encoded to %d ids, want %d", len(sp.Train), len(full))
	}
	for i, id := range sp.Train {
		b, _ := tr.TokenBytes(nil, id)
		if string(b) != string(g.bytes[full[i]]) {
			t.Fatalf("token %d: %q, want %q", i, b, g.bytes[full[i]])
		}
	}
	// "Hello" and " world" are not in the sentence: 5 + 6 byte tokens.
	if len(sp.Validation) != 11 {
		t.Fatalf("unseen words became %d ids, want 11 single bytes", len(sp.Validation))
	}
	for _, s := range []string{train, "Hello world — ünïcode €, 1790–2021.", ""} {
		ids, err := tr.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := Decode(tr, ids); got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	}
	back, err := ParseGPT2Trim(tr.Vocab())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.ids, tr.ids) {
		t.Fatal("vocabulary changed in the metadata round trip")
	}
	if _, err := ParseGPT2Trim("0 1 x"); err == nil {
		t.Error("damaged vocabulary accepted")
	}
	if _, err := ParseGPT2Trim("300 5"); err == nil {
		t.Error("vocabulary without the byte tokens accepted")
	}
	if _, err := tr.TokenBytes(nil, tr.VocabSize()); err == nil {
		t.Error("out-of-range id accepted")
	}
}

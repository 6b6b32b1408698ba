package data

import (
	"slices"
	"testing"
)

func TestByteTokenizer(t *testing.T) {
	tok := ByteTokenizer{}
	s := "Fellow-Citizens: ünïcode €"
	ids, _ := tok.Encode(s)
	if len(ids) != len(s) {
		t.Fatalf("%d ids for %d bytes", len(ids), len(s))
	}
	if got, _ := Decode(tok, ids); got != s {
		t.Fatalf("round trip %q", got)
	}
}

func TestGPT2(t *testing.T) {
	tok, err := NewTokenizer("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 50257 {
		t.Fatalf("vocab %d", tok.VocabSize())
	}
	// Ids of OpenAI's GPT-2 tokenizer (tiktoken r50k_base).
	for _, tc := range []struct {
		s   string
		ids []int
	}{{"Hello world", []int{15496, 995}}, {" the", []int{262}}, {"<|endoftext|>", []int{27, 91, 437, 1659, 5239, 91, 29}}} {
		ids, err := tok.Encode(tc.s)
		if err != nil || !slices.Equal(ids, tc.ids) {
			t.Errorf("Encode(%q) = %v, %v; want %v", tc.s, ids, err, tc.ids)
		}
	}
	s := "The Congress shall have Power — to lay and collect Taxes, 1790–2021."
	ids, _ := tok.Encode(s)
	if got, _ := Decode(tok, ids); got != s {
		t.Fatalf("round trip %q", got)
	}
}

// TestStreamDecoder feeds a multi-byte character one byte-token at a time:
// nothing may be printed until the character is complete.
func TestStreamDecoder(t *testing.T) {
	d := &StreamDecoder{T: ByteTokenizer{}}
	var out []byte
	for i, b := range []byte("a€b") {
		got, err := d.Push(int(b))
		if err != nil {
			t.Fatal(err)
		}
		if (i == 1 || i == 2) && len(got) != 0 {
			t.Fatalf("byte %d: printed %q inside a character", i, got)
		}
		out = append(out, got...)
	}
	out = append(out, d.Flush()...)
	if string(out) != "a€b" {
		t.Fatalf("streamed %q", out)
	}
	if allocs := testing.AllocsPerRun(100, func() { d.Push('x') }); allocs != 0 {
		t.Errorf("Push allocates %.0f times per token", allocs)
	}
}

func TestBatcher(t *testing.T) {
	stream := make([]int, 50)
	for i := range stream {
		stream[i] = i
	}
	b, err := NewBatcher(stream, 2, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 20; k++ {
		b.Random()
		for i := range b.Inputs {
			if b.Targets[i] != b.Inputs[i]+1 {
				t.Fatalf("target %d after input %d", b.Targets[i], b.Inputs[i])
			}
		}
	}
	n := 0
	for b.Sequential() {
		n++
	}
	// 50 tokens give 6 windows of 8+1 with stride 8, so 3 full batches.
	if n != 3 || b.Inputs[0] != 32 {
		t.Fatalf("%d sequential batches, last starts at %d", n, b.Inputs[0])
	}
	if _, err := NewBatcher(stream[:5], 1, 8, 1); err == nil {
		t.Fatal("too-short stream accepted")
	}
}

//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/sysmem"
	"github.com/slabml/slab/tensor"
)

// rssLimit is the resident memory a refused request may reach: the
// promise of issue 14 (absurd sizes get a clear error while the process
// stays under 1 GB).
const rssLimit = 1 << 30

// TestMemoryAndFiniteGuards runs slab (the test binary standing in for
// it, see TestMain) on absurd sizes, a checkpoint whose model_config
// claims an absurd or merely huge model, a PNG of 20000x20000 pixels and
// non-finite weights and inputs: each must exit 1 with one line naming
// what was asked and, for memory, what is available, while its peak
// resident memory (the child's rusage Maxrss) stays under 1 GB. A child
// that passes the limit is killed at once (the test polls its VmRSS), so
// a regression fails the test instead of exhausting the machine. The
// memory available is capped at 1 GB (SLAB_MEMORY_LIMIT) so that the
// outcome does not depend on the machine.
func TestMemoryAndFiniteGuards(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	m, err := models.New("slab_deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	models.SetSchedule(m, 0, 0) // a finished schedule: no load warning on stderr
	writeWeights := func(name string, edit func(f *checkpoint.File)) {
		f, err := models.WeightsFile(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(f)
		}
		if err := checkpoint.Write(path(name), f); err != nil {
			t.Fatal(err)
		}
	}
	withConfig := func(set map[string]any) func(f *checkpoint.File) {
		return func(f *checkpoint.File) {
			var raw map[string]any
			if err := json.Unmarshal([]byte(f.Metadata[models.MetaConfig]), &raw); err != nil {
				t.Fatal(err)
			}
			for k, v := range set {
				raw[k] = v
			}
			js, _ := json.Marshal(raw)
			f.Metadata[models.MetaConfig] = string(js)
		}
	}
	writeWeights("mini.safetensors", nil)
	writeWeights("wide.safetensors", withConfig(map[string]any{"Dim": 100000}))
	writeWeights("big.safetensors", withConfig(map[string]any{"Dim": 4096, "Depth": 64})) // in bounds: 12.9 G parameters
	writeWeights("nan.safetensors", func(f *checkpoint.File) { f.Tensors["blocks.1.attn.qkv.weight"].F32[9] = float32(math.NaN()) })
	x := tensor.New(2, 1, 28, 28)
	x.Data[800] = float32(math.Inf(-1))
	in := checkpoint.NewFile()
	in.Set("input", x)
	if err := checkpoint.Write(path("inf_input.safetensors"), in); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("huge.png"), zeroPNG(20000, 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("corpus.txt"), bytes.Repeat([]byte("the state of the union is strong and the people are free\n"), 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path("huge.png"))
	t.Logf("huge.png: 20000x20000 RGB, %d bytes", st.Size())

	for _, c := range []struct {
		args string
		want []string
	}{
		{"bench --models slab_deit_mini_28 --size 100000", []string{"--size", "100000"}},
		{"info slab_deit_mini_28 --size 100000", []string{"--size", "100000"}},
		{"bench --models slab_deit_mini_28 --batch 1000000", []string{"--batch", "1000000"}},
		{"bench --models slab_deit_mini_28 --size 4096 --batch 1 --rounds 1 --warmup 0", []string{"--size", "4096x4096", "available"}},
		{"bench --models slab_deit_mini_28 --batch 65536 --rounds 1 --warmup 0", []string{"batch 65536", "available"}},
		{"train --model slab_deit_mini_28 --batch 65536 --out run", []string{"--batch", "batch 65536", "available"}},
		{"train-lm --model lm_tiny --data corpus.txt --batch 4096 --seq 128 --steps 1 --out lmrun", []string{"--batch", "batch 4096 x 128 tokens", "available"}},
		{"train-lm --model lm_tiny --data corpus.txt --steps 20 --lr 10 --batch 4 --seq 32 --threads 1 --out lmdiv", []string{"step 2: loss", "training diverged"}},
		{"eval --weights wide.safetensors", []string{"wide.safetensors", "Dim 100000 is above its bound"}},
		{"fuse --weights wide.safetensors --out folded.safetensors", []string{"wide.safetensors", "Dim 100000 is above its bound"}},
		{"run --weights wide.safetensors --input inf_input.safetensors --output out.safetensors", []string{"wide.safetensors", "Dim 100000"}},
		{"eval --weights big.safetensors", []string{"big.safetensors", "needs about", "available"}},
		{"fuse --weights big.safetensors --out folded.safetensors", []string{"big.safetensors", "needs about", "available"}},
		{"classify --weights mini.safetensors huge.png", []string{"huge.png", "20000x20000"}},
		{"run --weights mini.safetensors --input inf_input.safetensors --output out.safetensors", []string{"inf_input.safetensors", "-Inf", "[1 0 0 16]"}},
		{"eval --weights nan.safetensors", []string{"nan.safetensors", "tensor blocks.1.attn.qkv.weight holds NaN"}},
		{"fuse --weights nan.safetensors --out folded.safetensors", []string{"nan.safetensors", "tensor blocks.1.attn.qkv.weight holds NaN"}},
		{"run --weights nan.safetensors --input inf_input.safetensors --output out.safetensors", []string{"tensor blocks.1.attn.qkv.weight holds NaN"}},
	} {
		line, rss, code := runGuarded(t, dir, strings.Fields(c.args))
		if len(line) > 600 { // a runtime trace: its head says enough
			line = line[:600] + "...\n"
		}
		t.Logf("slab %s\n\texit %d, peak RSS %s: %s", c.args, code, sysmem.Bytes(rss), strings.TrimSpace(line))
		switch {
		case rss >= rssLimit:
			t.Errorf("slab %s: peak resident memory %s, want under 1 GB", c.args, sysmem.Bytes(rss))
		case code != 1:
			t.Errorf("slab %s: exit %d, want 1 (stderr %q)", c.args, code, line)
		case strings.Count(line, "\n") != 1:
			t.Errorf("slab %s: stderr has %d lines, want one:\n%s", c.args, strings.Count(line, "\n"), line)
		}
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("slab %s: message %q does not say %q", c.args, strings.TrimSpace(line), w)
			}
		}
	}
	for _, out := range []string{"folded.safetensors", "out.safetensors", "run"} {
		if _, err := os.Stat(path(out)); err == nil {
			t.Errorf("a refused command wrote %s", out)
		}
	}
}

// runGuarded runs slab args in dir and returns its stderr, peak resident
// memory in bytes and exit code; it kills the child once its VmRSS passes
// rssLimit or after 20 s.
func runGuarded(t *testing.T, dir string, args []string) (string, int64, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SLAB_TEST_MAIN=1", "SLAB_TRACE=", sysmem.EnvLimit+"=1G")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if vmRSS(status) >= rssLimit || time.Now().After(deadline) {
				cmd.Process.Kill()
				return
			}
		}
	}()
	cmd.Wait()
	close(done)
	// Maxrss is an upper bound of the child's own peak: Linux carries the
	// high-water mark of the memory the child shared with this process
	// until exec (Go forks with CLONE_VM), so small children read as
	// about this test's own resident size (some 50 MB).
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // kilobytes on Linux
	}
	return stderr.String(), rss, cmd.ProcessState.ExitCode()
}

// vmRSS reads VmRSS (bytes) from a /proc/PID/status file; 0 if it cannot.
func vmRSS(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// zeroPNG returns a valid w x h 8-bit RGB PNG of black pixels, written
// without holding the image: its zlib stream is one fixed-Huffman deflate
// block of a literal zero followed by length-258 copies at distance 1
// (13 bits per 258 bytes), so a 20000x20000 image (1.2 GB decoded as RGB,
// 1.6 GB as Go's RGBA) is a few MB written in milliseconds.
func zeroPNG(w, h int) []byte {
	n := int64(h) * int64(1+3*w) // a filter byte (0) and w RGB pixels per row
	var bw bitWriter
	bw.bits(1, 1)                       // BFINAL
	bw.bits(1, 2)                       // BTYPE 01: fixed Huffman
	lit0 := func() { bw.code(0x30, 8) } // literal 0: 00110000
	lit0()
	left := n - 1
	for ; left >= 258; left -= 258 {
		bw.code(0xC5, 8) // length 258: symbol 285, 11000101, no extra bits
		bw.code(0, 5)    // distance 1: code 0, no extra bits
	}
	for ; left > 0; left-- {
		lit0()
	}
	bw.code(0, 7) // end of block (256)
	bw.flush()
	z := append([]byte{0x78, 0x01}, bw.buf...)
	z = binary.BigEndian.AppendUint32(z, uint32(n%65521)<<16|1) // Adler-32 of n zeros: a = 1, b = n
	var png bytes.Buffer
	png.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&png, binary.BigEndian, uint32(len(data)))
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		png.WriteString(typ)
		png.Write(data)
		binary.Write(&png, binary.BigEndian, c.Sum32())
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8 bits, RGB, deflate, adaptive filters, no interlace
	chunk("IHDR", ihdr)
	chunk("IDAT", z)
	chunk("IEND", nil)
	return png.Bytes()
}

// bitWriter packs a deflate stream: values LSB first, Huffman codes
// most significant bit first.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) bits(v uint64, n uint) {
	b.acc |= v << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

func (b *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := uint(0); i < n; i++ {
		r = r<<1 | (c>>i)&1
	}
	b.bits(r, n)
}

func (b *bitWriter) flush() {
	if b.nacc > 0 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc, b.nacc = 0, 0
	}
}

package slab_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab"
	"github.com/slabml/slab/tensor"
)

// Model.Logits refuses a NaN or infinite input, naming its position,
// instead of answering NaN.
func TestLogitsRefusesNonFinite(t *testing.T) {
	m, err := slab.Load(apiClassifier)
	if err != nil {
		t.Fatal(err)
	}
	c, h, w := m.InputShape()
	x := tensor.New(2, c, h, w)
	if _, err := m.Logits(x); err != nil {
		t.Fatalf("finite input: %v", err)
	}
	x.Data[c*h*w+5] = float32(math.NaN())
	_, err = m.Logits(x)
	if err == nil || !strings.Contains(err.Error(), "NaN at [1 0 0 5]") {
		t.Fatalf("NaN input: %v", err)
	}
	t.Log(err)
}

// ClassifyFiles reads an image's size from its header and refuses one
// above MaxImagePixels before decoding it (the file here is a header and
// a few bytes of image data that claim 20000x20000 pixels).
func TestClassifyFilesBoundsPixels(t *testing.T) {
	m, err := slab.Load(apiClassifier)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "huge.png")
	if err := os.WriteFile(path, pngHeader(20000, 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = m.ClassifyFiles([]string{path}, 1)
	if err == nil || !strings.Contains(err.Error(), "20000x20000") || !strings.Contains(err.Error(), "huge.png") {
		t.Fatalf("20000x20000 PNG: %v", err)
	}
	t.Log(err)
}

// pngHeader is a PNG whose IHDR claims w x h gray pixels, followed by one
// row of image data: enough for image.DecodeConfig.
func pngHeader(w, h int) []byte {
	var png bytes.Buffer
	png.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&png, binary.BigEndian, uint32(len(data)))
		png.WriteString(typ)
		png.Write(data)
		binary.Write(&png, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	chunk("IHDR", append(ihdr, 8, 0, 0, 0, 0))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 1+w))
	zw.Flush()
	chunk("IDAT", z.Bytes())
	return png.Bytes()
}

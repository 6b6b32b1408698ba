package checkpoint

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// FuzzSafetensors checks that no input panics ReadBytes, and that whatever
// it accepts survives a write/read round trip unchanged.
func FuzzSafetensors(f *testing.F) {
	if b, err := Marshal(sampleFile()); err == nil {
		f.Add(b)
	}
	f.Add(rawST(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32bytes(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ReadBytes(b, "fuzz")
		if err != nil {
			return
		}
		enc, err := Marshal(g)
		if err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		h, err := ReadBytes(enc, "re-encoded")
		if err != nil {
			t.Fatalf("reading a re-encoded file: %v", err)
		}
		enc2, _ := Marshal(h)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("round trip changed the file")
		}
	})
}

// FuzzPTH checks that no input panics the PyTorch reader (a panic that
// ReadPTHBytes' last-resort recover catches is reported as a failure), and
// that whatever it accepts can be written as
// safetensors.
func FuzzPTH(f *testing.F) {
	for _, name := range []string{"nested.pth", "legacy.pth", "module.pth"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ReadPTHBytes(b, "fuzz", "")
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatal(err)
			}
			return
		}
		if _, err := Marshal(g); err != nil {
			t.Fatalf("accepted file does not encode: %v", err)
		}
	})
}

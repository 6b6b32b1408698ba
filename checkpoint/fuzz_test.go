package checkpoint

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path"
	"strings"
	"testing"
)

func mustMarshal(t *testing.T, f *File) []byte {
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzSafetensors checks that no input panics ReadBytes, and that whatever
// it accepts survives a write/read round trip unchanged.
func FuzzSafetensors(f *testing.F) {
	if b, err := Marshal(sampleFile()); err == nil {
		f.Add(b)
	}
	f.Add(rawST(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32bytes(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ReadBytes(b, "fuzz")
		// The aliasing reader (Read) must agree with the copying one.
		a, aerr := readBytes(append([]byte(nil), b...), "fuzz", true, false)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("copying reader: %v, aliasing reader: %v", err, aerr)
		}
		// So must the raw one (ReadRaw), and what it accepts re-encodes.
		r, rerr := readBytes(append([]byte(nil), b...), "fuzz", true, true)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("copying reader: %v, raw reader: %v", err, rerr)
		}
		if rerr == nil {
			if _, err := Marshal(r); err != nil {
				t.Fatalf("re-encoding a raw read: %v", err)
			}
		}
		if err != nil {
			return
		}
		if ea, eg := mustMarshal(t, a), mustMarshal(t, g); !bytes.Equal(ea, eg) {
			t.Fatal("aliasing and copying readers decode differently")
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
// that whatever it accepts can be written as safetensors. Random bytes
// rarely survive zip's checksums, so an input that is not a zip is also
// tried as the data.pkl of an archive holding the fixture's storages: that
// aims the fuzzer at the pickle VM and the tensor rebuilding.
func FuzzPTH(f *testing.F) {
	for _, name := range []string{"nested.pth", "legacy.pth", "module.pth"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	members := map[string][]byte{}
	if b, err := os.ReadFile("testdata/nested.pth"); err == nil {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			r, _ := zf.Open()
			d, _ := io.ReadAll(r)
			r.Close()
			members[path.Base(zf.Name)] = d
		}
		f.Add(members["data.pkl"])
	}
	check := func(t *testing.T, b []byte) {
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
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		if bytes.HasPrefix(b, []byte("PK")) || len(members) == 0 {
			return
		}
		var z bytes.Buffer
		zw := zip.NewWriter(&z)
		for name, d := range members {
			if name == "data.pkl" {
				d = b
			}
			dir := "a/"
			if name != "data.pkl" && name != "version" {
				dir = "a/data/"
			}
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: dir + name, Method: zip.Store})
			w.Write(d)
		}
		zw.Close()
		check(t, z.Bytes())
	})
}

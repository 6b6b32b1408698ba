package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/train"
)

// stdout and stderr are where the vision commands write; tests swap them to
// run commands in-process. With --json, stdout carries exactly one JSON
// object and everything else (progress, tables) goes to stderr.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// errHelp is returned after -h printed the usage: not a failure.
var errHelp = errors.New("help requested")

// newFlags returns a flag set that reports errors as values (one line,
// naming the flag) instead of printing usage and exiting.
func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: slab %s\n\nflags:\n", usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, allowing positional words between flags
// (slab info MODEL --json), and returns the positional words.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	if flagsOnly != nil {
		flagsOnly(fs)
		return nil, errFlagsOnly
	}
	usage := quietUsage(fs)
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, errHelp
			}
			// The flag package spells flags -name; users type --name.
			return nil, errors.New(dashes.ReplaceAllString(err.Error(), "$1--$2"))
		}
		if fs.NArg() == 0 {
			return pos, checkRanges(fs)
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

var dashes = regexp.MustCompile(`(^|[: ])-([A-Za-z][\w-]*)`)

// flagsOnly, when set, receives the flag set of a command and stops the
// command before it parses anything: the test of every flag of every
// command (flags_test.go) finds them this way, flags added later included.
var flagsOnly func(*flag.FlagSet)

var errFlagsOnly = errors.New("flags only")

// ranged is a numeric flag with its declared range; parseFlags refuses a
// value given outside it before the command does anything, and the flag
// test derives its bad values from it.
type ranged struct {
	flag.Value
	lo, hi         float64
	openLo, openHi bool
}

func (r *ranged) String() string {
	if r == nil || r.Value == nil {
		return ""
	}
	return r.Value.String()
}

// Get is the wrapped flag's value.
func (r *ranged) Get() any { return r.Value.(flag.Getter).Get() }

// Range is the interval as declared ("[1, 65536]", "(0, inf)").
func (r *ranged) Range() string {
	f := func(x float64) string { return strings.Replace(strconv.FormatFloat(x, 'f', -1, 64), "+Inf", "inf", 1) }
	return fmt.Sprintf("%s%s, %s%s", map[bool]string{false: "[", true: "("}[r.openLo], f(r.lo), f(r.hi), map[bool]string{false: "]", true: ")"}[r.openHi])
}

// flagRange declares the interval of each named numeric flag of fs:
// "[lo, hi]" with ( or ) for an open end and inf for no bound (an
// infinite or NaN value is never accepted). A default outside it (-1 for
// "the model's") stays usable by leaving the flag out.
func flagRange(fs *flag.FlagSet, interval string, names ...string) {
	var r ranged
	lo, hi, ok := strings.Cut(strings.Trim(interval, "[]()"), ",")
	var e1, e2 error
	r.lo, e1 = strconv.ParseFloat(strings.TrimSpace(lo), 64)
	r.hi, e2 = strconv.ParseFloat(strings.TrimSpace(hi), 64)
	if !ok || e1 != nil || e2 != nil {
		panic("flagRange: bad interval " + interval)
	}
	r.openLo, r.openHi = interval[0] == '(', interval[len(interval)-1] == ')'
	for _, n := range names {
		fl := fs.Lookup(n)
		rn := r
		rn.Value = fl.Value
		fl.Value = &rn
		kind := strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%T", rn.Get()), "64"), "32")
		fl.Usage += " (`" + kind + "` in " + rn.Range() + ")" // -h names the type, not "value"
	}
}

// checkRanges refuses a flag given outside its declared range.
func checkRanges(fs *flag.FlagSet) (err error) {
	fs.Visit(func(fl *flag.Flag) {
		r, ok := fl.Value.(*ranged)
		if !ok || err != nil {
			return
		}
		v, _ := strconv.ParseFloat(fmt.Sprint(r.Get()), 64)
		if math.IsNaN(v) || math.IsInf(v, 0) || v < r.lo || v > r.hi || (r.openLo && v == r.lo) || (r.openHi && v == r.hi) {
			err = flagErr(fl.Name, "must be in %s, got %s", r.Range(), fl.Value)
		}
	})
	return err
}

// noArgs parses args and refuses positional words.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) != 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	return err
}

// quietUsage silences fs.Usage for the duration of a parse and returns the
// original: the flag package prints the usage on every parse error, but a
// bad flag must reach the user as one error line; only -h shows the usage.
func quietUsage(fs *flag.FlagSet) func() {
	usage := fs.Usage
	fs.Usage = func() {}
	return usage
}

// runCmd wraps a command body so that -h exits cleanly.
func runCmd(f func(args []string) error) func(args []string) error {
	return func(args []string) error {
		err := f(args)
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
}

// flagErr names the flag at fault in a value error.
func flagErr(name, format string, a ...any) error {
	return fmt.Errorf("flag --%s: "+format, append([]any{name}, a...)...)
}

// threadsFlag registers --threads, bounded: a run records (and uses)
// kernels.Threads(), the cores for 0.
func threadsFlag(fs *flag.FlagSet, usage string) *int {
	p := fs.Int("threads", 0, usage)
	flagRange(fs, "[0, 1024]", "threads")
	return p
}

// setThreads applies --threads (0 = all cores).
func setThreads(n int) error {
	kernels.SetThreads(n)
	return nil
}

// startProfile starts a CPU profile into path ("" = none); stop ends it
// and may be called again.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, flagErr("cpuprofile", "%v", err)
	}
	return sync.OnceFunc(func() { pprof.StopCPUProfile(); f.Close() }), nil
}

// metric is a float64 that encodes as JSON null when it is not finite.
type metric = train.Metric

// emitJSON writes v as one JSON object line on stdout.
func emitJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// jsonOr returns err if set, else emits v when jsonOut is set.
func jsonOr(v any, err error, jsonOut bool) error {
	if err != nil || !jsonOut {
		return err
	}
	return emitJSON(v)
}

// warn prints a loader's warnings to stderr, one line each.
func warn(ws []string) {
	for _, w := range ws {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
}

// info is where human-readable output goes: stdout normally, stderr under
// --json so that stdout holds only the JSON object.
func info(jsonOut bool) io.Writer {
	if jsonOut {
		return stderr
	}
	return stdout
}

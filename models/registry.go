package models

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Family is one model family: how to make its configs and models.
type Family struct {
	// Name is the family's registered name, stored in checkpoints.
	Name string
	// Task is what its models do.
	Task Task
	// Doc is a one-line description for listings.
	Doc string
	// NewConfig returns a pointer to a zero config, to decode checkpoints
	// into.
	NewConfig func() Config
	// Build makes a model from a validated config with weights initialised
	// from seed as the official code does. With draw false the values are
	// about to be loaded, and the random draws may be left out: loading a
	// checkpoint then never writes, and the OS never provides, the pages of
	// weights the file overwrites or, for a quantized file, replaces
	// (BuildBare).
	Build func(cfg Config, seed uint64, draw bool) (Model, error)
	// Aliases map official state-dict layouts onto the model's names (see
	// LoadState); nil when the names are the official ones.
	Aliases []Alias
}

// Entry is one registered model name.
type Entry struct {
	Name   string
	Family *Family
	// config is the registered configuration; Config returns copies.
	config Config
}

// Config returns a fresh copy of the entry's configuration, safe to change.
func (e *Entry) Config() Config {
	c, err := CopyConfig(e.Family, e.config)
	if err != nil {
		panic(fmt.Sprintf("models: %s: registered config does not round-trip through JSON: %v", e.Name, err))
	}
	return c
}

var (
	mu       sync.RWMutex
	families = map[string]*Family{}
	entries  = map[string]*Entry{}
	suffixes []Suffix // in registration order
)

// Register adds a family and its named configurations; each family's
// package calls it from init. It panics on a duplicate name or an invalid
// config: both are programming errors found by the first test run.
func Register(f *Family, named map[string]Config) {
	mu.Lock()
	defer mu.Unlock()
	if f.Name == "" || f.NewConfig == nil || f.Build == nil {
		panic("models.Register: family needs Name, NewConfig and Build")
	}
	if _, dup := families[f.Name]; dup {
		panic("models.Register: family " + f.Name + " registered twice")
	}
	families[f.Name] = f
	for n, c := range named {
		if _, dup := entries[n]; dup {
			panic("models.Register: model " + n + " registered twice")
		}
		if err := c.Validate(); err != nil {
			panic(fmt.Sprintf("models.Register: %s: %v", n, err))
		}
		entries[n] = &Entry{Name: n, Family: f, config: c}
	}
}

// Suffix is a name ending that selects an option of a registered model of
// Family: "llama_350m_prepbn" is llama_350m with norm prepbn.
type Suffix struct {
	Family, Suffix, Option, Value string
}

// RegisterSuffixes lets a family's names take the given endings. Endings
// are cut from the end of a name, each option at most once, in
// registration order.
func RegisterSuffixes(s ...Suffix) {
	mu.Lock()
	defer mu.Unlock()
	suffixes = append(suffixes, s...)
}

// Lookup resolves a model name: a registered name, or one followed by
// endings its family registered with RegisterSuffixes. The config returned
// is a copy with the endings' options applied.
func Lookup(name string) (*Entry, Config, error) {
	mu.RLock()
	defer mu.RUnlock()
	if e, ok := entries[name]; ok {
		return e, e.Config(), nil
	}
	e, applied := resolve(name, nil)
	if e == nil {
		return nil, nil, fmt.Errorf("unknown model %q (see slab models; known: %s)", name, strings.Join(namesLocked(), ", "))
	}
	c := e.Config()
	for i := len(applied) - 1; i >= 0; i-- {
		if err := c.Set(applied[i].Option, applied[i].Value); err != nil {
			return nil, nil, fmt.Errorf("model %q: %v", name, err)
		}
	}
	if n, ok := c.(interface{ SetModelName(string) }); ok {
		n.SetModelName(name)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("model %q: %v", name, err)
	}
	return e, c, nil
}

// resolve finds the registered entry base names once endings are cut, and
// the endings cut (last first). Families may register the same ending
// ("_prepbn"), so every matching ending of the family chosen by the first
// cut is tried, not only the first registered.
func resolve(base string, applied []Suffix) (*Entry, []Suffix) {
	if e, ok := entries[base]; ok && len(applied) > 0 && sameFamily(e, applied) {
		return e, applied
	}
	for _, s := range suffixes {
		if len(applied) > 0 && s.Family != applied[0].Family {
			continue
		}
		if b, ok := strings.CutSuffix(base, s.Suffix); ok && b != "" && !hasOption(applied, s.Option) {
			if e, a := resolve(b, append(applied[:len(applied):len(applied)], s)); e != nil {
				return e, a
			}
		}
	}
	return nil, nil
}

func sameFamily(e *Entry, applied []Suffix) bool {
	for _, s := range applied {
		if s.Family != e.Family.Name {
			return false
		}
	}
	return true
}

func hasOption(ss []Suffix, option string) bool {
	for _, s := range ss {
		if s.Option == option {
			return true
		}
	}
	return false
}

// Names lists the registered model names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	ns := make([]string, 0, len(entries))
	for n := range entries {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Families lists the registered families, sorted by name.
func Families() []*Family {
	mu.RLock()
	defer mu.RUnlock()
	fs := make([]*Family, 0, len(families))
	for _, f := range families {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

// FamilyOf returns the registered family called name.
func FamilyOf(name string) (*Family, error) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := families[name]
	if !ok {
		known := make([]string, 0, len(families))
		for n := range families {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown model family %q (linked in: %s)", name, strings.Join(known, ", "))
	}
	return f, nil
}

// Entries lists every registered name with its family, sorted by name.
func Entries() []*Entry {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]*Entry, 0, len(entries))
	for _, n := range namesLocked() {
		out = append(out, entries[n])
	}
	return out
}

// CopyConfig deep-copies c through its JSON form, which is also how
// checkpoints store it.
func CopyConfig(f *Family, c Config) (Config, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return DecodeConfig(f, b)
}

// DecodeConfig decodes a family config from its JSON form and validates it.
func DecodeConfig(f *Family, js []byte) (Config, error) {
	c := f.NewConfig()
	if err := json.Unmarshal(js, c); err != nil {
		return nil, fmt.Errorf("%s config: %v", f.Name, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Build makes a model of family f from cfg (validated first, and refused
// when its weights would not fit in the memory available: CheckMemory).
func Build(f *Family, cfg Config, seed uint64) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckMemory("", cfg, 0, false); err != nil {
		return nil, err
	}
	return f.Build(cfg, seed, true)
}

// BuildBare is Build for a model whose every parameter is about to be
// loaded: no random draws, so the weights a file overwrites never become
// resident twice.
func BuildBare(f *Family, cfg Config) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckMemory("", cfg, 0, false); err != nil {
		return nil, err
	}
	return f.Build(cfg, 0, false)
}

// New resolves name and builds its model from seed.
func New(name string, seed uint64) (Model, error) {
	e, c, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return Build(e.Family, c, seed)
}

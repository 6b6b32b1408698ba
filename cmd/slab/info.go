package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/slabml/slab/models/vit"
)

func init() {
	register(&command{Name: "info", Summary: "parameters and FLOPs per image of a model, by layer type", Run: runCmd(cmdInfo)})
	register(&command{Name: "models", Summary: "list the registered vision models", Run: runCmd(cmdModels)})
}

// infoResult is the JSON of slab info.
type infoResult struct {
	Model    string           `json:"model"`
	Config   vit.Config       `json:"config"`
	Params   int              `json:"params"`
	Tokens   int              `json:"tokens"`
	FLOPs    map[string]int64 `json:"flops_per_image"`
	Total    int64            `json:"flops_per_image_total"`
	GFLOPs   float64          `json:"gflops_per_image"`
	TrainMul int              `json:"train_flops_multiplier"`
}

func cmdInfo(args []string) error {
	fs := newFlags("info", "info MODEL [--norm N] [--attn A] [--size S] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	norm := fs.String("norm", "", "override the norm: layernorm|repbn|prepbn|batchnorm|none")
	attn := fs.String("attn", "", "override the attention: softmax|sla")
	size := fs.Int("size", 0, "override the input side (0 = the model's)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want exactly one MODEL argument (see slab models), got %d", len(pos))
	}
	cfg, err := modelConfig(pos[0], *norm, *attn)
	if err != nil {
		return err
	}
	if *size < 0 {
		return flagErr("size", "must be >= 0, got %d", *size)
	}
	if *size > 0 {
		cfg.ImgSize = *size
		if err := cfg.Validate(); err != nil {
			return flagErr("size", "%v", err)
		}
	}
	m, err := vit.New(cfg, 0)
	if err != nil {
		return err
	}
	fl := m.FLOPs()
	r := infoResult{Model: pos[0], Config: cfg, Params: m.NumParams(), Tokens: cfg.Tokens(), FLOPs: fl, Total: m.TotalFLOPs(), TrainMul: 3}
	r.GFLOPs = float64(r.Total) / 1e9
	if *jsonOut {
		return emitJSON(r)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "%s: norm %s, attention %s, %dx%d input, patch %d, %d tokens, dim %d, depth %d, heads %d\n",
		pos[0], cfg.Norm, cfg.Attn, cfg.ImgSize, cfg.ImgSize, cfg.Patch, cfg.Tokens(), cfg.Dim, cfg.Depth, cfg.Heads)
	fmt.Fprintf(stdout, "parameters: %d (%.3f M)\n", r.Params, float64(r.Params)/1e6)
	keys := make([]string, 0, len(fl))
	for k := range fl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "layer type\tFLOPs/image\tshare\t")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t\n", k, fl[k], 100*float64(fl[k])/float64(r.Total))
	}
	fmt.Fprintf(w, "total\t%d\t(%.4f GFLOP, multiply-add = 2)\t\n", r.Total, r.GFLOPs)
	return w.Flush()
}

// modelEntry is one row of slab models.
type modelEntry struct {
	Name   string  `json:"name"`
	Norm   string  `json:"norm"`
	Attn   string  `json:"attn"`
	Img    int     `json:"img_size"`
	Patch  int     `json:"patch"`
	Dim    int     `json:"dim"`
	Depth  int     `json:"depth"`
	Heads  int     `json:"heads"`
	Cls    bool    `json:"cls_token"`
	Params int     `json:"params"`
	GFLOPs float64 `json:"gflops_per_image"`
}

func cmdModels(args []string) error {
	fs := newFlags("models", "models [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	var rows []modelEntry
	for _, n := range vit.Names() {
		c, err := vit.Lookup(n)
		if err != nil {
			return err
		}
		m, err := vit.New(c, 0)
		if err != nil {
			return err
		}
		rows = append(rows, modelEntry{n, c.Norm, c.Attn, c.ImgSize, c.Patch, c.Dim, c.Depth, c.Heads, c.ClsToken, m.NumParams(), float64(m.TotalFLOPs()) / 1e9})
	}
	if *jsonOut {
		return emitJSON(map[string]any{"models": rows})
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "model\tnorm\tattn\timg\tpatch\tdim\tdepth\theads\tcls\tparams\tGFLOP/img")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%v\t%.2fM\t%.3f\n", r.Name, r.Norm, r.Attn, r.Img, r.Patch, r.Dim, r.Depth, r.Heads, r.Cls, float64(r.Params)/1e6, r.GFLOPs)
	}
	return w.Flush()
}

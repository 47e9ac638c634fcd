package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/urfave/cli/v2"
)

// comparison is what tfcat compare reports.
type comparison struct {
	ModelA, ModelB    string             `json:"-"`
	Models            [2]string          `json:"models"`
	Images            int                `json:"images"`
	MaxAbsDiff        float64            `json:"max_abs_prob_diff"`
	MeanAbsDiff       float64            `json:"mean_abs_prob_diff"`
	Agreement         float64            `json:"class_agreement"`
	Disagreements     []string           `json:"disagreements,omitempty"`
	VariableMaxDiff   map[string]float64 `json:"variable_max_abs_diff,omitempty"`
	VariablesCompared bool               `json:"variables_compared"`
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "run two models on the same images and report how far apart they are",
		ArgsUsage: "[IMAGE|DIR...]",
		Description: "The check to make when moving from the Python tutorial to tfcat: A and B are any models tfcat\n" +
			"loads (its checkpoints, the Python tutorial's, SavedModels). Both run on the same preprocessed\n" +
			"images; tfcat reports the largest and mean absolute probability difference, how often the\n" +
			"predicted classes agree and, where both hold variables of the same names and shapes, the largest\n" +
			"difference per variable.\n\n" +
			"Examples:\n" +
			"   tfcat compare --model python-run/ --model tfcat-run/ --data testing_data/\n" +
			"   tfcat compare -m ./dogs-cats-model -m export/ --format json cat.jpg dog.jpg",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "a model; give exactly two"},
			&cli.StringFlag{Name: "data", Usage: "a folder of images (searched recursively)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text or json"},
			batchFlag, deviceFlag, threadsFlag, trustFlag,
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on stderr"},
		},
		Action: func(c *cli.Context) error {
			format, err := checkFormat(c, "text", "json")
			if err != nil {
				return err
			}
			paths := c.StringSlice("model")
			if len(paths) != 2 {
				return usagef("compare needs exactly two --model flags, got %d", len(paths))
			}
			inputs := c.Args().Slice()
			if d := c.String("data"); d != "" {
				inputs = append(inputs, d)
			}
			if len(inputs) == 0 {
				return usagef("compare needs --data DIR or IMAGE arguments")
			}
			cfg, err := sessionConfig(c)
			if err != nil {
				return err
			}
			files, err := imageFiles(inputs)
			if err != nil {
				return err
			}
			var models [2]*loadedModel
			for i, p := range paths {
				if models[i], err = loadModel(c, p, cfg); err != nil {
					return fmt.Errorf("model %s: %w", p, err)
				}
				defer models[i].Close()
			}
			ha, wa, ca := models[0].InputSize()
			hb, wb, cb := models[1].InputSize()
			if ha != hb || wa != wb || ca != cb || models[0].NumClasses() != models[1].NumClasses() {
				return fmt.Errorf("the models differ in shape: %dx%dx%d with %d classes vs %dx%dx%d with %d classes",
					ha, wa, ca, models[0].NumClasses(), hb, wb, cb, models[1].NumClasses())
			}
			var preds [2][]prediction
			for i, m := range models {
				if preds[i], err = predictFiles(m, files, c.Int("batch")); err != nil {
					return err
				}
			}
			r := comparison{Models: [2]string{models[0].Path, models[1].Path}}
			var sum float64
			var count, agree int
			for i := range files {
				a, b := preds[0][i], preds[1][i]
				if a.Err != nil {
					return a.Err
				}
				r.Images++
				if a.Index == b.Index {
					agree++
				} else {
					r.Disagreements = append(r.Disagreements, a.File)
				}
				for k := range a.Probs {
					d := math.Abs(float64(a.Probs[k]) - float64(b.Probs[k]))
					r.MaxAbsDiff = math.Max(r.MaxAbsDiff, d)
					sum += d
					count++
				}
			}
			r.MeanAbsDiff = sum / float64(count)
			r.Agreement = float64(agree) / float64(r.Images)
			if models[0].Variables != nil && models[1].Variables != nil {
				va, errA := models[0].Variables()
				vb, errB := models[1].Variables()
				if errA == nil && errB == nil {
					r.VariableMaxDiff = map[string]float64{}
					for name, x := range va {
						y, ok := vb[name]
						if !ok || len(x) != len(y) {
							continue
						}
						d := 0.0
						for j := range x {
							d = math.Max(d, math.Abs(float64(x[j])-float64(y[j])))
						}
						r.VariableMaxDiff[name] = d
					}
					r.VariablesCompared = len(r.VariableMaxDiff) > 0
				}
			}
			w := c.App.Writer
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprintf(w, "A: %s\nB: %s\n", r.Models[0], r.Models[1])
			fmt.Fprintf(w, "images:                  %d\n", r.Images)
			fmt.Fprintf(w, "max |pA - pB|:           %.3g\n", r.MaxAbsDiff)
			fmt.Fprintf(w, "mean |pA - pB|:          %.3g\n", r.MeanAbsDiff)
			fmt.Fprintf(w, "predicted classes agree: %.2f%% (%d of %d)\n", 100*r.Agreement, agree, r.Images)
			if r.VariablesCompared {
				names := make([]string, 0, len(r.VariableMaxDiff))
				for n := range r.VariableMaxDiff {
					names = append(names, n)
				}
				sort.Strings(names)
				fmt.Fprintln(w, "largest difference per variable:")
				for _, n := range names {
					fmt.Fprintf(w, "  %-22s %.3g\n", n, r.VariableMaxDiff[n])
				}
			} else {
				fmt.Fprintln(w, "variables: not compared (the models hold no variables of the same names and shapes)")
			}
			return nil
		},
	}
}

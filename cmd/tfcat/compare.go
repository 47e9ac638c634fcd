package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/model"
)

// comparison is what tfcat compare reports: model.Compare's result, framed.
type comparison struct {
	Models [2]string `json:"models"`
	*metrics.Comparison
	Disagreements     []string           `json:"disagreements,omitempty"`
	VariableMaxDiff   map[string]float64 `json:"variable_max_abs_diff,omitempty"`
	VariablesCompared bool               `json:"variables_compared"`
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:        "compare",
		Usage:       "run two models on the same images and report how far apart they are",
		ArgsUsage:   "[IMAGE|DIR...]",
		Description: help("compare"),
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "a model; give exactly two"},
			&cli.StringFlag{Name: "data", Usage: "a folder of images (searched recursively)"},
			formatFlag("text", "json"), batchFlag, deviceFlag, threadsFlag, trustFlag, quietFlag,
		},
		Action: func(c *cli.Context) error {
			format := format(c)
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
			if _, err := sessionConfig(c, false); err != nil { // a bad --device before a bad file
				return err
			}
			files, err := dataset.ImageFiles(inputs)
			if err != nil {
				return err
			}
			var models [2]*model.Model
			for i, p := range paths {
				if models[i], err = openModel(c, p); err != nil {
					return fmt.Errorf("model %s: %w", p, err)
				}
				defer models[i].Close()
			}
			res, err := model.Compare(models[0], models[1], files, c.Int("batch"))
			if err != nil {
				return err
			}
			r := comparison{Models: [2]string{models[0].Path, models[1].Path}, Comparison: res.Comparison,
				Disagreements: res.Disagreements, VariableMaxDiff: res.VariableMaxDiff, VariablesCompared: len(res.VariableMaxDiff) > 0}
			w := c.App.Writer
			if format == "json" {
				return printJSON(w, r)
			}
			return res.WriteText(w, r.Models[0], r.Models[1])
		},
	}
}

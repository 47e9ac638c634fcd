package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/metrics"
	"github.com/tfcat/tfcat/model"
)

// evaluation is what tfcat eval reports: model.Evaluate's scores, framed.
type evaluation struct {
	Model string `json:"model"`
	Data  string `json:"data"`
	*metrics.Evaluation
	Skipped []string `json:"skipped,omitempty"`
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:        "eval",
		Usage:       "measure a model on a labelled folder: accuracy, per-class precision, recall, F1, confusion matrix",
		Description: help("eval"),
		Flags: []cli.Flag{
			modelFlag("model folder, checkpoint prefix or SavedModel folder"),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "folder with one sub-folder of images per class"},
			formatFlag("text", "json"), classesFlag, batchFlag, deviceFlag, threadsFlag, precisionFlag, trustFlag, quietFlag,
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image instead of skipping it"},
		},
		Action: func(c *cli.Context) error {
			format := format(c)
			m, err := openModel(c, c.String("model"))
			if err != nil {
				return err
			}
			defer m.Close()
			res, err := m.Evaluate(c.String("data"), model.EvalOptions{Batch: c.Int("batch"), Strict: c.Bool("strict")})
			if err != nil {
				return err
			}
			ev := evaluation{Model: m.Path, Data: c.String("data"), Evaluation: res.Evaluation}
			for _, p := range res.Skipped {
				ev.Skipped = append(ev.Skipped, p.String())
			}
			return printEvaluation(c, format, &ev)
		},
	}
}

func printEvaluation(c *cli.Context, format string, ev *evaluation) error {
	w := c.App.Writer
	if format == "json" {
		return printJSON(w, ev)
	}
	for _, s := range ev.Skipped {
		fmt.Fprintf(c.App.ErrWriter, "tfcat: skipped %s\n", s)
	}
	fmt.Fprintf(w, "model:    %s\ndata:     %s (%d images)\n", ev.Model, ev.Data, ev.Images)
	return ev.WriteText(w)
}

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:        "report",
		Usage:       "write one self-contained HTML page on a model: training curves, facts, and with --data its scores and mistakes",
		Description: help("report"),
		Flags: []cli.Flag{
			modelFlag("model folder, checkpoint prefix or SavedModel folder"),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "a folder with one sub-folder of images per class to evaluate on"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "report.html", Usage: "the HTML file to write"},
			&cli.IntFlag{Name: "max-images", Value: report.DefaultMaxMisclassified, Usage: "most misclassified images shown (0: none)"},
			classesFlag, batchFlag, deviceFlag, threadsFlag, trustFlag, quietFlag,
		},
		Action: func(c *cli.Context) error {
			m, err := openModel(c, c.String("model"))
			if err != nil {
				return err
			}
			defer m.Close()
			limit := c.Int("max-images")
			if limit == 0 {
				limit = -1 // report.Options: zero is the default, negative none
			}
			opt := report.Options{Model: m, Data: c.String("data"), Batch: c.Int("batch"), MaxMisclassified: limit}
			if _, err := report.WriteFile(c.String("out"), opt); err != nil || c.Bool("quiet") {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tfcat: wrote %s\n", c.String("out"))
			return nil
		},
	}
}

package main

import (
	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/model"
	"github.com/urfave/cli/v2"
)

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:        "predict",
		Usage:       "print class probabilities for images",
		ArgsUsage:   "IMAGE|DIR...",
		Description: help("predict"),
		Flags: []cli.Flag{
			modelFlag("model folder, checkpoint prefix or SavedModel folder"),
			classesFlag, formatFlag("text", "json", "csv"), batchFlag, deviceFlag, threadsFlag, precisionFlag, trustFlag, quietFlag,
		},
		Action: func(c *cli.Context) error {
			format := format(c)
			if c.NArg() == 0 {
				return usagef("predict needs at least one IMAGE or DIR")
			}
			if _, err := sessionConfig(c, false); err != nil { // a bad --device before a bad file
				return err
			}
			files, err := dataset.ImageFiles(c.Args().Slice())
			if err != nil {
				return err
			}
			m, err := openModel(c, c.String("model"))
			if err != nil {
				return err
			}
			defer m.Close()
			preds, err := m.PredictFiles(files, c.Int("batch"))
			if err != nil {
				return err
			}
			if err := model.WritePredictions(c.App.Writer, format, m.Classes, preds); err != nil {
				return err
			}
			return model.ReportFailures(c.App.ErrWriter, preds)
		},
	}
}

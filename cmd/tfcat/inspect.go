package main

import (
	"github.com/tfcat/tfcat/model"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:        "inspect",
		Usage:       "describe a checkpoint: variables, classes, input size, steps trained, TensorFlow version",
		Description: help("inspect"),
		Flags: []cli.Flag{
			modelFlag("model folder, checkpoint prefix or SavedModel folder"), formatFlag("text", "json"),
		},
		Action: func(c *cli.Context) error {
			format := format(c)
			d, err := model.Inspect(c.String("model"))
			if err != nil {
				return err
			}
			return printInspection(c, format, d)
		},
	}
}

func printInspection(c *cli.Context, format string, in *model.Description) error {
	if format == "json" {
		return printJSON(c.App.Writer, in)
	}
	return in.WriteText(c.App.Writer)
}

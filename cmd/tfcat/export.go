package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfsession"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:        "export",
		Usage:       "write a checkpoint as a TensorFlow SavedModel, for TensorFlow Serving, Python or tfcat serve",
		Description: help("export"),
		Flags: []cli.Flag{
			modelFlag("model folder or checkpoint prefix"),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "SavedModel folder to write (required)"},
			classesFlag,
			&cli.BoolFlag{Name: "force", Usage: "replace an existing SavedModel in --out"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
			// A SavedModel holds float32 weights and the float32 graph, as
			// TensorFlow Serving expects: the precision is chosen where it
			// runs. The flag is here to say so rather than "not defined".
			&cli.StringFlag{Name: "precision", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("precision") {
				return usagef("--precision: an export keeps float32 weights and graph; choose the precision where it runs: tfcat serve --precision bf16, or TensorFlow Serving's --mixed_precision=bfloat16")
			}
			if c.NArg() > 0 {
				return usagef("export takes no arguments (got %q); use --model and --out", c.Args().First())
			}
			out := c.String("out")
			if out == "" {
				return usagef("--out is required")
			}
			model := c.String("model")
			if model == "" {
				return usagef("--model is required")
			}
			if savedmodel.IsSavedModel(model) {
				return fmt.Errorf("%s is a SavedModel already; export reads checkpoints", model)
			}
			info, err := savedmodel.Export(model, out, savedmodel.ExportOptions{
				Classes: splitList(c.String("classes")),
				Force:   c.Bool("force"),
				// Export only moves weights: the CPU is enough, and quick to start.
				Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU},
			})
			var exists *savedmodel.ExistsError
			if errors.As(err, &exists) {
				return fmt.Errorf("%w (pass --force to replace the SavedModel in it)", err)
			}
			if err != nil {
				return err
			}
			if !c.Bool("quiet") {
				fmt.Fprintf(c.App.Writer, "exported %s to %s: signature %s, images %dx%dx%d -> %s, %s (classes %s)\n",
					model, out, savedmodel.SignatureKey, info.Height, info.Width, info.Channels,
					savedmodel.ProbabilitiesKey, savedmodel.ClassesKey, strings.Join(info.Classes, ", "))
			}
			return nil
		},
	}
}

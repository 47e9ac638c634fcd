package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/tfgraph"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a checkpoint as a TensorFlow SavedModel, for TensorFlow Serving, Python or tfcat serve",
		Description: "Builds the inference graph (no optimizer) for the checkpoint's network, restores its weights and\n" +
			"writes OUT/saved_model.pb (one MetaGraph tagged 'serve'), OUT/variables/ and OUT/assets/classes.txt.\n" +
			"The signature serving_default takes 'images' (float32 [-1,H,W,C], preprocessed as tfcat and the\n" +
			"tutorial do: BGR, resized, scaled to [0,1]) and returns 'probabilities' and 'classes' (argmax).\n" +
			"--model is a folder with a 'checkpoint' file or a checkpoint prefix, tfcat's or the Python\n" +
			"tutorial's (give --classes for the latter, else classes are numbered). The export is written\n" +
			"beside OUT, checked by loading it back, then renamed into place; an existing SavedModel in OUT\n" +
			"is replaced only with --force.\n\n" +
			"Examples:\n" +
			"   tfcat export --model . --out export/1\n" +
			"   tfcat export --model ./dogs-cats-model --classes dogs,cats --out serving/cats/1 --force\n" +
			"   python -c \"import tensorflow as tf; print(tf.saved_model.load('export/1').signatures)\"",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: "model folder or checkpoint prefix"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "SavedModel folder to write (required)"},
			classesFlag,
			&cli.BoolFlag{Name: "force", Usage: "replace an existing SavedModel in --out"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
		},
		Action: func(c *cli.Context) error {
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
				Session: tfgraph.SessionConfig{Device: tfgraph.DeviceCPU},
			})
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

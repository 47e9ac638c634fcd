package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
)

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "make image folders to train on",
		Subcommands: []*cli.Command{{
			Name:        "fashion-mnist",
			Usage:       "write Fashion-MNIST as class folders of PNG files",
			Description: strings.ReplaceAll(help("fashion-mnist"), "{classes}", strings.Join(dataset.FashionMNISTClasses, ", ")),
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "folder to write the class folders into"},
				&cli.StringFlag{Name: "classes", Usage: "comma-separated classes (default: all ten)"},
				&cli.IntFlag{Name: "limit", Usage: "at most this many images per class (0: all)"},
				&cli.StringFlag{Name: "split", Value: "train", Usage: "train (60,000 images) or test (10,000)"},
				&cli.StringFlag{Name: "idx-dir", Value: dataset.FashionMNISTDir, Usage: "folder of the gzip'd IDX files"},
			},
			Action: func(c *cli.Context) error {
				if s := c.String("split"); s != "train" && s != "test" {
					return usagef("--split %q: use train or test", s)
				}
				if c.Int("limit") < 0 {
					return usagef("--limit %d must not be negative", c.Int("limit"))
				}
				classes := splitList(c.String("classes"))
				counts, err := dataset.ExportFashionMNIST(c.String("idx-dir"), c.String("out"), dataset.ExportOptions{
					Split: c.String("split"), Classes: classes, Limit: c.Int("limit"),
				})
				if err == nil {
					total, perClass := dataset.ExportSummary(classes, counts)
					fmt.Fprintf(c.App.Writer, "wrote %d images to %s (%s)\n", total, c.String("out"), perClass)
				}
				return err
			},
		}},
	}
}

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/internal/npy"
)

func preprocessCommand() *cli.Command {
	return &cli.Command{
		Name:        "preprocess",
		Usage:       "write the exact float32 tensor tfcat feeds the network, as a NumPy .npy file",
		ArgsUsage:   "IMAGE...",
		Description: help("preprocess"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "size", Value: 128, Usage: "output height and width", Action: positive[int]("--size")},
			&cli.IntFlag{Name: "channels", Value: 3, Usage: "3 (BGR) or 1 (grayscale)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "the .npy file to write"},
		},
		Action: func(c *cli.Context) error {
			size, ch := c.Int("size"), c.Int("channels")
			if ch != 1 && ch != 3 {
				return usagef("--channels %d: use 1 or 3", ch)
			}
			if c.NArg() == 0 {
				return usagef("preprocess needs at least one IMAGE")
			}
			files, err := dataset.ImageFiles(c.Args().Slice())
			if err != nil {
				return err
			}
			out, err := dataset.PreprocessFiles(files, size, ch)
			if err != nil {
				return err
			}
			if err := npy.WriteFile(c.String("out"), []int{len(files), size, size, ch}, out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %s: %d images, shape [%d, %d, %d, %d] float32\n", c.String("out"), len(files), len(files), size, size, ch)
			return nil
		},
	}
}

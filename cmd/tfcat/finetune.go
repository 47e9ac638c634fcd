package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/trainer"
)

// listBaseLayers prints the backbone's trainable layers, input to output,
// the names --fine-tune takes.
func listBaseLayers(c *cli.Context) error {
	if c.String("base") == "" {
		return usagef("--fine-tune list needs --base, the backbone whose layers to list")
	}
	layers, err := trainer.BaseLayers(&trainer.Base{Path: c.String("base"), Output: c.String("base-output"), Trust: c.Bool("trust-graph")})
	if err != nil {
		return err
	}
	for _, l := range layers {
		fmt.Fprintln(c.App.Writer, l)
	}
	return nil
}

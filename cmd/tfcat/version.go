package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/tfgraph"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print tfcat's version, the TensorFlow runtime's and the devices it sees",
		Description: help("version"),
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
		Action: func(c *cli.Context) error {
			rt, derr := tfgraph.DescribeRuntime()
			w := c.App.Writer
			if c.Bool("json") {
				info := struct {
					Tfcat string `json:"tfcat"`
					tfgraph.Runtime
				}{version, rt}
				if err := json.NewEncoder(w).Encode(info); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "tfcat %s\nTensorFlow %s (C library; tfcat pins %s)\n", version, rt.TensorFlow, rt.Pinned)
				for i, d := range rt.Devices {
					fmt.Fprintf(w, "device %s (%s)\n", d, rt.Types[i])
				}
				if len(rt.GPUs) == 0 {
					fmt.Fprintln(w, "GPUs: none visible")
				}
			}
			if derr == nil {
				derr = tfgraph.CheckRuntime()
			}
			return derr
		},
	}
}

package main

import (
	"encoding/json"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/tfsession"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print tfcat's version, the TensorFlow runtime's and the devices it sees",
		Description: help("version"),
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
		Action: func(c *cli.Context) error {
			rt, derr := tfsession.DescribeRuntime()
			w := c.App.Writer
			if c.Bool("json") {
				info := struct {
					Tfcat string `json:"tfcat"`
					tfsession.Runtime
				}{version, rt}
				if err := json.NewEncoder(w).Encode(info); err != nil {
					return err
				}
			} else if err := rt.WriteText(w, version); err != nil {
				return err
			}
			if derr == nil {
				derr = tfsession.CheckRuntime()
			}
			return derr
		},
	}
}

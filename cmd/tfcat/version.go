package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat"
	"github.com/tfcat/tfcat/tfgraph"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print tfcat's version, the TensorFlow runtime's and the devices it sees",
		Description: "Checks that the linked libtensorflow is the version tfcat pins and exits 1 if not.\n\n" +
			"Example:\n   tfcat version\n   tfcat version --json",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
		Action: func(c *cli.Context) error {
			devs, derr := tfgraph.Devices(tfgraph.SessionConfig{})
			info := struct {
				Tfcat      string   `json:"tfcat"`
				TensorFlow string   `json:"tensorflow"`
				Pinned     string   `json:"tensorflow_pinned"`
				Devices    []string `json:"devices"`
				GPUs       []string `json:"gpus"`
			}{Tfcat: version, TensorFlow: tfgraph.RuntimeVersion(), Pinned: tfcat.TensorFlowVersion(), Devices: []string{}, GPUs: []string{}}
			for _, d := range devs {
				info.Devices = append(info.Devices, d.Name)
				if d.Type == "GPU" {
					info.GPUs = append(info.GPUs, d.Name)
				}
			}
			w := c.App.Writer
			if c.Bool("json") {
				if err := json.NewEncoder(w).Encode(info); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "tfcat %s\n", info.Tfcat)
				fmt.Fprintf(w, "TensorFlow %s (C library; tfcat pins %s)\n", info.TensorFlow, info.Pinned)
				for _, d := range devs {
					fmt.Fprintf(w, "device %s (%s)\n", d.Name, d.Type)
				}
				if len(info.GPUs) == 0 {
					fmt.Fprintln(w, "GPUs: none visible")
				}
			}
			if derr != nil {
				return fmt.Errorf("listing devices: %w", derr)
			}
			return tfgraph.CheckRuntime()
		},
	}
}

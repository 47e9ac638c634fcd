package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

var formatFlag = &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "output format: text, json or csv"}

func checkFormat(c *cli.Context, allowed ...string) (string, error) {
	f := strings.ToLower(c.String("format"))
	for _, a := range allowed {
		if f == a {
			return f, nil
		}
	}
	return "", usagef("--format %q: use one of %s", c.String("format"), strings.Join(allowed, ", "))
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "print class probabilities for images",
		ArgsUsage: "IMAGE|DIR...",
		Description: "Loads a model the way the tutorial's predict.py does (import the .meta, restore the latest\n" +
			"checkpoint, feed x:0, fetch y_pred:0) and prints, per image, the predicted class and every\n" +
			"probability. --model is a folder with a 'checkpoint' file (its latest checkpoint is used), a\n" +
			"checkpoint prefix such as ./dogs-cats-model, or a SavedModel folder. Checkpoints written by the\n" +
			"Python tutorial store no class names: give them with --classes, else classes are numbered.\n" +
			"Folders are searched recursively for jpg, jpeg, png, bmp and gif files. An image that cannot be\n" +
			"read is reported and the exit status is 1.\n\n" +
			"Examples:\n" +
			"   tfcat predict --model . cat.jpg\n" +
			"   tfcat predict --model ./dogs-cats-model --classes dogs,cats --format json testing_data/\n" +
			"   tfcat predict --model model/ -f csv images/ > predictions.csv",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: "model folder, checkpoint prefix or SavedModel folder"},
			classesFlag, formatFlag, batchFlag, deviceFlag, threadsFlag, trustFlag,
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on stderr"},
		},
		Action: func(c *cli.Context) error {
			format, err := checkFormat(c, "text", "json", "csv")
			if err != nil {
				return err
			}
			if c.NArg() == 0 {
				return usagef("predict needs at least one IMAGE or DIR")
			}
			cfg, err := sessionConfig(c)
			if err != nil {
				return err
			}
			files, err := imageFiles(c.Args().Slice())
			if err != nil {
				return err
			}
			m, err := loadModel(c, c.String("model"), cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			preds, err := predictFiles(m, files, c.Int("batch"))
			if err != nil {
				return err
			}
			if err := writePredictions(c.App.Writer, format, m.Classes, preds); err != nil {
				return err
			}
			var failed []string
			for _, p := range preds {
				if p.Err != nil {
					fmt.Fprintf(c.App.ErrWriter, "tfcat: %v\n", p.Err)
					failed = append(failed, p.File)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d images could not be read (first: %s)", len(failed), len(preds), failed[0])
			}
			return nil
		},
	}
}

// predictionJSON is one image in --format json.
type predictionJSON struct {
	File          string             `json:"file"`
	Class         string             `json:"class,omitempty"`
	Index         int                `json:"index"`
	Probabilities map[string]float32 `json:"probabilities,omitempty"`
	Error         string             `json:"error,omitempty"`
}

func writePredictions(w io.Writer, format string, classes []string, preds []prediction) error {
	switch format {
	case "json":
		out := make([]predictionJSON, len(preds))
		for i, p := range preds {
			out[i] = predictionJSON{File: p.File, Index: -1}
			if p.Err != nil {
				out[i].Error = p.Err.Error()
				continue
			}
			out[i].Class, out[i].Index = classes[p.Index], p.Index
			out[i].Probabilities = map[string]float32{}
			for k, v := range p.Probs {
				out[i].Probabilities[classes[k]] = v
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(append([]string{"file", "class"}, classes...))
		for _, p := range preds {
			if p.Err != nil {
				continue
			}
			row := []string{p.File, classes[p.Index]}
			for _, v := range p.Probs {
				row = append(row, strconv.FormatFloat(float64(v), 'g', 8, 32))
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	case "text":
		for _, p := range preds {
			if p.Err != nil {
				continue
			}
			parts := make([]string, len(p.Probs))
			for k, v := range p.Probs {
				parts[k] = fmt.Sprintf("%s %.6f", classes[k], v)
			}
			if _, err := fmt.Fprintf(w, "%s: %s (%s)\n", p.File, classes[p.Index], strings.Join(parts, ", ")); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New("unknown format " + format)
}

package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/tfgraph"
)

// evaluation is what tfcat eval reports.
type evaluation struct {
	Model     string       `json:"model"`
	Data      string       `json:"data"`
	Images    int          `json:"images"`
	Accuracy  float64      `json:"accuracy"`
	Classes   []string     `json:"classes"`
	PerClass  []classScore `json:"per_class"`
	Confusion [][]int      `json:"confusion"` // rows: true class, columns: predicted
	Skipped   []string     `json:"skipped,omitempty"`
}

type classScore struct {
	Class     string  `json:"class"`
	Support   int     `json:"support"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "measure a model on a labelled folder: accuracy, per-class precision, recall, F1, confusion matrix",
		Description: "--data holds one sub-folder per class, as for train. Classes are matched to the model's by\n" +
			"name when the model stores names; otherwise the sorted folder names are taken in label order\n" +
			"(or give --classes).\n\n" +
			"Examples:\n   tfcat eval --model . --data testing_data\n   tfcat eval -m model/ --data fmnist-test --format json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: "model folder, checkpoint prefix or SavedModel folder"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "folder with one sub-folder of images per class"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text or json"},
			classesFlag, batchFlag, deviceFlag, threadsFlag, trustFlag,
			&cli.BoolFlag{Name: "strict", Usage: "stop at the first unreadable image instead of skipping it"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no notes on stderr"},
		},
		Action: func(c *cli.Context) error {
			format, err := checkFormat(c, "text", "json")
			if err != nil {
				return err
			}
			m, err := openModel(c)
			if err != nil {
				return err
			}
			defer m.Close()
			h, _, ch := m.InputSize()
			// Folder classes in the model's label order, when the model names them.
			var classes []string
			if named := !isNumbered(m.Classes); named {
				classes = m.Classes
			}
			set, err := dataset.Load(c.String("data"), dataset.Options{Size: h, Channels: ch, Classes: classes, Strict: c.Bool("strict")})
			if err != nil {
				return err
			}
			if len(set.Classes) != m.NumClasses() {
				return fmt.Errorf("%s has %d classes (%s), the model %d", c.String("data"), len(set.Classes), strings.Join(set.Classes, ", "), m.NumClasses())
			}
			ev := evaluation{Model: m.Path, Data: c.String("data"), Classes: set.Classes}
			for _, p := range set.Report().Skipped {
				ev.Skipped = append(ev.Skipped, p.String())
			}
			k := len(set.Classes)
			ev.Confusion = make([][]int, k)
			for i := range ev.Confusion {
				ev.Confusion[i] = make([]int, k)
			}
			all := set.Train // no validation split: every image is in Train
			n := all.Len()
			bs := max(1, min(c.Int("batch"), n))
			var b dataset.Batch
			for done := 0; done < n; {
				size := min(bs, n-done)
				if err := all.NextBatch(size, &b); err != nil {
					return err
				}
				p, err := m.Predict(b.X, b.N)
				if err != nil {
					return err
				}
				for j := 0; j < b.N; j++ {
					ev.Confusion[b.Labels[j]][tfgraph.ArgMax(p[j*k:(j+1)*k])]++
				}
				done += size
			}
			correct := 0
			for i := range k {
				correct += ev.Confusion[i][i]
				var predicted, support int
				for j := range k {
					predicted += ev.Confusion[j][i]
					support += ev.Confusion[i][j]
				}
				s := classScore{Class: set.Classes[i], Support: support}
				if predicted > 0 {
					s.Precision = float64(ev.Confusion[i][i]) / float64(predicted)
				}
				if support > 0 {
					s.Recall = float64(ev.Confusion[i][i]) / float64(support)
				}
				if s.Precision+s.Recall > 0 {
					s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
				}
				ev.PerClass = append(ev.PerClass, s)
			}
			ev.Images = n
			ev.Accuracy = float64(correct) / float64(n)
			return printEvaluation(c, format, &ev)
		},
	}
}

// isNumbered reports whether classes are the placeholder names "0", "1", ...
func isNumbered(classes []string) bool {
	for i, c := range classes {
		if c != fmt.Sprint(i) {
			return false
		}
	}
	return true
}

func printEvaluation(c *cli.Context, format string, ev *evaluation) error {
	w := c.App.Writer
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ev)
	}
	for _, s := range ev.Skipped {
		fmt.Fprintf(c.App.ErrWriter, "tfcat: skipped %s\n", s)
	}
	fmt.Fprintf(w, "model:    %s\ndata:     %s (%d images)\naccuracy: %.4f\n\n", ev.Model, ev.Data, ev.Images, ev.Accuracy)
	width := 9
	for i, cl := range ev.Classes {
		width = max(width, len(fmt.Sprintf("%d %s", i, cl)))
	}
	fmt.Fprintf(w, "%-*s  %9s  %9s  %9s  %7s\n", width, "class", "precision", "recall", "f1", "support")
	for _, s := range ev.PerClass {
		fmt.Fprintf(w, "%-*s  %9.4f  %9.4f  %9.4f  %7d\n", width, s.Class, s.Precision, s.Recall, s.F1, s.Support)
	}
	fmt.Fprintf(w, "\nconfusion matrix (rows: true class, columns: predicted):\n%-*s", width, "")
	for i := range ev.Classes {
		fmt.Fprintf(w, "  %7d", i)
	}
	fmt.Fprintln(w)
	for i, row := range ev.Confusion {
		fmt.Fprintf(w, "%-*s", width, fmt.Sprintf("%d %s", i, ev.Classes[i]))
		for _, v := range row {
			fmt.Fprintf(w, "  %7d", v)
		}
		fmt.Fprintln(w)
	}
	return nil
}

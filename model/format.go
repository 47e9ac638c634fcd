package model

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// predictionJSON is one image in --format json.
type predictionJSON struct {
	File          string             `json:"file"`
	Class         string             `json:"class,omitempty"`
	Index         int                `json:"index"`
	Probabilities map[string]float32 `json:"probabilities,omitempty"`
	Error         string             `json:"error,omitempty"`
}

// WritePredictions writes preds, whose classes are named by classes, in one
// of the formats tfcat predict prints: "text" (a line per image), "json" (an
// array of objects with file, class, index and probabilities by class name,
// or error) or "csv" (file, class, then a column per class). Images that
// failed appear only in JSON.
func WritePredictions(w io.Writer, format string, classes []string, preds []Prediction) error {
	switch format {
	case "json":
		out := make([]predictionJSON, len(preds))
		for i, p := range preds {
			out[i] = predictionJSON{File: p.File, Index: -1}
			if p.Err != nil {
				out[i].Error = p.Err.Error()
				continue
			}
			out[i].Class, out[i].Index = classes[p.Class], p.Class
			out[i].Probabilities = map[string]float32{}
			for k, v := range p.Probabilities {
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
			row := []string{p.File, classes[p.Class]}
			for _, v := range p.Probabilities {
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
			parts := make([]string, len(p.Probabilities))
			for k, v := range p.Probabilities {
				parts[k] = fmt.Sprintf("%s %.6f", classes[k], v)
			}
			if _, err := fmt.Fprintf(w, "%s: %s (%s)\n", p.File, classes[p.Class], strings.Join(parts, ", ")); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New("unknown format " + format)
}

// WriteText writes the description as tfcat inspect prints it, a field a
// line and a line per variable.
func (in *Description) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "checkpoint:  %s\n", in.Path)
	fmt.Fprintf(w, "written by:  %s, TensorFlow %s\n", in.WrittenBy, orUnknown(in.TensorFlowVersion))
	fmt.Fprintf(w, "input:       %s\n", join(in.InputSize, "x"))
	if len(in.Classes) > 0 {
		fmt.Fprintf(w, "classes:     %s\n", strings.Join(in.Classes, ", "))
	} else {
		fmt.Fprintln(w, "classes:     not stored (give --classes to predict)")
	}
	if in.StepsKnown {
		fmt.Fprintf(w, "steps:       %d\n", in.Steps)
	} else {
		fmt.Fprintln(w, "steps:       unknown")
	}
	if len(in.Kept) > 0 {
		fmt.Fprintf(w, "kept:        %s\n", strings.Join(in.Kept, ", "))
	}
	fmt.Fprintf(w, "parameters:  %d trainable\n", in.Parameters)
	fmt.Fprintf(w, "variables (%d):\n", len(in.Variables))
	for _, v := range in.Variables {
		mark := ""
		if v.Trainable {
			mark = "  trainable"
		}
		fmt.Fprintf(w, "  %-22s [%s]%s\n", v.Name, join(v.Shape, ","), mark)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func join[T int | int64](v []T, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}

// WriteText writes the comparison as tfcat compare prints it; a and b name
// the two models.
func (c *Comparison) WriteText(w io.Writer, a, b string) error {
	fmt.Fprintf(w, "A: %s\nB: %s\n", a, b)
	fmt.Fprintf(w, "images:                  %d\n", c.Images)
	fmt.Fprintf(w, "max |pA - pB|:           %.3g\n", c.MaxAbsDiff)
	fmt.Fprintf(w, "mean |pA - pB|:          %.3g\n", c.MeanAbsDiff)
	fmt.Fprintf(w, "predicted classes agree: %.2f%% (%d of %d)\n", 100*c.Agreement, c.Agree, c.Images)
	if len(c.VariableMaxDiff) == 0 {
		fmt.Fprintln(w, "variables: not compared (the models hold no variables of the same names and shapes)")
		return nil
	}
	names := make([]string, 0, len(c.VariableMaxDiff))
	for n := range c.VariableMaxDiff {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "largest difference per variable:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %.3g\n", n, c.VariableMaxDiff[n])
	}
	return nil
}

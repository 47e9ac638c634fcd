package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tfcat/tfcat/tfgraph"
)

// inspection is what tfcat inspect reports.
type inspection struct {
	Checkpoint        string         `json:"checkpoint"`
	WrittenBy         string         `json:"written_by"`
	TensorFlowVersion string         `json:"tensorflow_version"`
	InputSize         []int          `json:"input_size"`
	Classes           []string       `json:"classes"`
	Steps             int            `json:"steps"`
	StepsKnown        bool           `json:"steps_known"`
	Parameters        int64          `json:"parameters"`
	Variables         []variableInfo `json:"variables"`
	Kept              []string       `json:"kept_checkpoints,omitempty"`
}

type variableInfo struct {
	Name      string  `json:"name"`
	Shape     []int64 `json:"shape"`
	Trainable bool    `json:"trainable"`
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "describe a checkpoint: variables, classes, input size, steps trained, TensorFlow version",
		Description: "Reads the checkpoint's .meta (no session is opened). Works on tfcat's checkpoints and on\n" +
			"those the Python tutorial writes; for the latter the step count is recovered from Adam's\n" +
			"beta1_power when the weights are read, and classes are unknown.\n\n" +
			"Examples:\n   tfcat inspect --model .\n   tfcat inspect --model ./dogs-cats-model --format json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: ".", Usage: "model folder or checkpoint prefix"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text or json"},
		},
		Action: func(c *cli.Context) error {
			format, err := checkFormat(c, "text", "json")
			if err != nil {
				return err
			}
			if lm, ok, err := inspectSavedModel(c.String("model")); ok || err != nil {
				if err != nil {
					return err
				}
				return printInspection(c, format, lm)
			}
			prefix, err := tfgraph.ResolveCheckpoint(c.String("model"))
			if err != nil {
				return err
			}
			meta, err := tfgraph.ReadMetaGraph(prefix)
			if err != nil {
				return err
			}
			mi := tfgraph.InfoFromMeta(meta)
			in := &inspection{Checkpoint: prefix, WrittenBy: "Python TensorFlow (tf.compat.v1 Saver)", TensorFlowVersion: mi.TensorFlowVersion,
				Classes: mi.Classes, Steps: mi.Step, StepsKnown: mi.Tfcat}
			if mi.Tfcat {
				in.WrittenBy = "tfcat"
			}
			trainable := map[string]bool{}
			for _, b := range meta.CollectionDef["trainable_variables"].GetBytesList().GetValue() {
				if name := variableDefName(b); name != "" {
					trainable[name] = true
				}
			}
			for _, n := range meta.GraphDef.Node {
				switch n.Name {
				case tfgraph.InputName:
					for _, d := range n.Attr["shape"].GetShape().GetDim()[1:] {
						in.InputSize = append(in.InputSize, int(d.Size))
					}
				}
				if n.Op != "VariableV2" && n.Op != "VarHandleOp" {
					continue
				}
				v := variableInfo{Name: n.Name, Trainable: trainable[n.Name], Shape: []int64{}}
				count := int64(1)
				for _, d := range n.Attr["shape"].GetShape().GetDim() {
					v.Shape = append(v.Shape, d.Size)
					count *= d.Size
				}
				if v.Trainable {
					in.Parameters += count
				}
				in.Variables = append(in.Variables, v)
			}
			sort.Slice(in.Variables, func(i, j int) bool { return in.Variables[i].Name < in.Variables[j].Name })
			if st, err := tfgraph.ReadCheckpointState(filepath.Dir(prefix)); err == nil {
				in.Kept = st.AllModelCheckpointPaths
			}
			if !mi.Tfcat {
				// Python's tutorial saves no step count; Adam's beta1_power holds it.
				cfg := tfgraph.SessionConfig{Device: tfgraph.DeviceCPU}
				if s, info, err := tfgraph.Resume(prefix, cfg, 0); err == nil {
					in.Steps, in.StepsKnown = info.Step, true
					s.Close()
				}
			}
			return printInspection(c, format, in)
		},
	}
}

// variableDefName returns the op name of a serialized VariableDef's variable.
func variableDefName(b []byte) string {
	name := tfgraph.VariableDefName(b)
	op, _, _ := strings.Cut(name, ":")
	return op
}

func printInspection(c *cli.Context, format string, in *inspection) error {
	w := c.App.Writer
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	fmt.Fprintf(w, "checkpoint:  %s\n", in.Checkpoint)
	fmt.Fprintf(w, "written by:  %s, TensorFlow %s\n", in.WrittenBy, orUnknown(in.TensorFlowVersion))
	fmt.Fprintf(w, "input:       %s\n", joinInts(in.InputSize, "x"))
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
		fmt.Fprintf(w, "  %-22s [%s]%s\n", v.Name, joinInts64(v.Shape, ","), mark)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func joinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}

func joinInts64(v []int64, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}

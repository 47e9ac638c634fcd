package metrics

import (
	"fmt"
	"io"
)

// WriteText writes the evaluation as tfcat eval prints it: the accuracy, a
// table of per-class scores and the confusion matrix.
func (ev *Evaluation) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "accuracy: %.4f\n\n", ev.Accuracy)
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

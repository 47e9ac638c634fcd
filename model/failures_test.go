package model

import (
	"bytes"
	"errors"
	"testing"
)

func TestReportFailures(t *testing.T) {
	bad := errors.New("b.png: not an image")
	for _, tc := range []struct {
		name    string
		preds   []Prediction
		wantErr string
		wantOut string
	}{
		{"all read", []Prediction{{File: "a.png"}, {File: "c.png"}}, "", ""},
		{"one failed", []Prediction{{File: "a.png"}, {File: "b.png", Err: bad}},
			"1 of 2 images could not be read (first: b.png)", "tfcat: b.png: not an image\n"},
		{"two failed", []Prediction{{File: "b.png", Err: bad}, {File: "d.png", Err: errors.New("d.png: empty")}},
			"2 of 2 images could not be read (first: b.png)", "tfcat: b.png: not an image\ntfcat: d.png: empty\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ReportFailures(&out, tc.preds)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
			if out.String() != tc.wantOut {
				t.Errorf("wrote %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

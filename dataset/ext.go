package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ImageExtensions are the file extensions tfcat reads as images (compared
// without regard to case): the tutorial's "*g" glob (jpg, jpeg, png) plus bmp
// and gif.
var ImageExtensions = []string{".jpg", ".jpeg", ".png", ".bmp", ".gif"}

// IsImageFile reports whether name has one of ImageExtensions.
func IsImageFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ImageExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// ImageFiles expands paths for prediction: a file is taken as given, a folder
// is searched recursively for image files (by extension), sorted. A folder
// with no image files is an error.
func ImageFiles(paths []string) ([]string, error) {
	var files []string
	for _, a := range paths {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, errors.Unwrap(err))
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && IsImageFile(p) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no image files (jpg, jpeg, png, bmp, gif) in this folder", a)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

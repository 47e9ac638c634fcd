package dataset

import (
	"path/filepath"
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

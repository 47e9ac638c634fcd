package checkpoint

import (
	"fmt"
	"io"
	"os"
)

// Limits on the model files tfcat reads itself: a file a user is handed
// could be a FIFO (reading blocks), a device (reading never ends) or huge.
const (
	// MaxStateFileBytes limits the "checkpoint" state file (text, a few
	// lines per checkpoint kept).
	MaxStateFileBytes = 1 << 20
	// MaxGraphFileBytes limits a .meta or saved_model.pb: parsing a
	// protocol buffer takes a few times its size in memory.
	MaxGraphFileBytes = 256 << 20
)

// ReadFileLimit reads a regular file of at most limit bytes. Errors name the
// file and what is wrong with it.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a model file may have", path, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: grew past the %d bytes a model file may have while being read", path, limit)
	}
	return data, nil
}

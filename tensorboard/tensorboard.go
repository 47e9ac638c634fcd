// Package tensorboard writes TensorBoard event files: TFRecord files of Event
// protos, as tf.summary's FileWriter writes them, so TensorBoard plots tfcat's
// training scalars.
package tensorboard

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	summarypb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// Writer appends scalar summaries to one event file. It is safe for
// concurrent use.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	path string
	err  error
}

// NewWriter creates dir if needed and opens a new event file in it, named
// events.out.tfevents.<seconds>.<host> as TensorFlow names them.
func NewWriter(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	now := time.Now()
	path := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d", now.Unix(), host, os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriter(f), path: path}
	w.write(&eventpb.Event{WallTime: seconds(now), What: &eventpb.Event_FileVersion{FileVersion: "brain.Event:2"}})
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Scalar records value under tag at step.
func (w *Writer) Scalar(step int64, tag string, value float32) error {
	return w.Scalars(step, map[string]float32{tag: value})
}

// Scalars records several tagged values at one step, in one event.
func (w *Writer) Scalars(step int64, values map[string]float32) error {
	s := &summarypb.Summary{}
	for tag, v := range values {
		s.Value = append(s.Value, &summarypb.Summary_Value{Tag: tag, Value: &summarypb.Summary_Value_SimpleValue{SimpleValue: v}})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.write(&eventpb.Event{WallTime: seconds(time.Now()), Step: step, What: &eventpb.Event_Summary{Summary: s}})
	return w.err
}

// write appends one TFRecord: length, masked CRC of the length, data, masked
// CRC of the data (little-endian).
func (w *Writer) write(e *eventpb.Event) {
	if w.err != nil {
		return
	}
	data, err := proto.Marshal(e)
	if err != nil {
		w.err = err
		return
	}
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], maskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, foot[:]} {
		if _, err := w.w.Write(b); err != nil {
			w.err = fmt.Errorf("tensorboard: writing %s: %w", w.path, err)
			return
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's CRC32-C, rotated and offset so that CRCs of data
// holding CRCs stay well distributed.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Flush writes buffered events to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("tensorboard: writing %s: %w", w.path, err)
	}
	return w.err
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

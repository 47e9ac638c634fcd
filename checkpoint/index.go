package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// A checkpoint's .index is a LevelDB-format table: data blocks of
// prefix-compressed key/value entries, an index block pointing at them, a
// footer, each block followed by its compression type and a masked CRC32C.
// Its values are BundleHeaderProto (key "") and one BundleEntryProto per
// tensor. TensorFlow's reader trusts what the entries say and aborts the
// process on some corrupt files, so tfcat checks every .index before handing
// it to TensorFlow: structure, checksums, and that each tensor lies within
// its data file.

// ErrCorruptIndex is wrapped by CheckIndex's refusals.
var ErrCorruptIndex = errors.New("corrupt checkpoint index")

const (
	tableMagic      = 0xdb4775248b80fb57
	tableFooterSize = 48
	blockTrailer    = 5 // compression type, masked CRC32C
	maxIndexBytes   = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CheckIndex checks prefix.index (and that its tensors lie within
// prefix.data-00000-of-00001) before TensorFlow reads them.
func CheckIndex(prefix string) error {
	path := prefix + IndexSuffix
	data, err := ReadFileLimit(path, maxIndexBytes)
	if err != nil {
		return err
	}
	dataSize := int64(-1)
	if fi, err := os.Stat(prefix + DataSuffix); err == nil {
		dataSize = fi.Size()
	}
	if err := checkIndex(data, dataSize); err != nil {
		return fmt.Errorf("%s: %w: %v", path, ErrCorruptIndex, err)
	}
	return nil
}

// checkIndex validates a table's bytes; dataSize < 0 skips the bounds check.
func checkIndex(data []byte, dataSize int64) error {
	if len(data) < tableFooterSize {
		return fmt.Errorf("%d bytes, shorter than a table footer", len(data))
	}
	footer := data[len(data)-tableFooterSize:]
	if binary.LittleEndian.Uint64(footer[40:]) != tableMagic {
		return errors.New("no table magic number")
	}
	_, n := readHandle(footer) // the metaindex block, which tfcat does not need
	if n <= 0 {
		return errors.New("bad metaindex handle")
	}
	idxOff, idxSize, m := readHandleAt(footer, n)
	if m <= 0 {
		return errors.New("bad index handle")
	}
	end := int64(len(data) - tableFooterSize)
	index, err := block(data, end, idxOff, idxSize)
	if err != nil {
		return fmt.Errorf("index block: %w", err)
	}
	var header bool
	entries := 0
	err = eachEntry(index, func(_, v []byte) error {
		off, size, n := readHandleAt(v, 0)
		if n <= 0 {
			return errors.New("bad data block handle")
		}
		b, err := block(data, end, off, size)
		if err != nil {
			return fmt.Errorf("data block at %d: %w", off, err)
		}
		return eachEntry(b, func(k, v []byte) error {
			if len(k) == 0 {
				var h corepb.BundleHeaderProto
				if err := proto.Unmarshal(v, &h); err != nil {
					return fmt.Errorf("header: %v", err)
				}
				if h.NumShards != 1 {
					return fmt.Errorf("%d data shards; tfcat reads single-shard checkpoints", h.NumShards)
				}
				header = true
				return nil
			}
			entries++
			var e corepb.BundleEntryProto
			if err := proto.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %q: %v", k, err)
			}
			return checkEntry(string(k), &e, dataSize)
		})
	})
	if err != nil {
		return err
	}
	if !header {
		return errors.New("no bundle header")
	}
	return nil
}

// checkEntry checks that a tensor's size matches its type and shape and
// lies within the data file.
func checkEntry(key string, e *corepb.BundleEntryProto, dataSize int64) error {
	if len(e.Slices) > 0 {
		return fmt.Errorf("entry %q is sliced; tfcat writes and reads whole tensors", key)
	}
	if e.ShardId != 0 || e.Offset < 0 || e.Size < 0 {
		return fmt.Errorf("entry %q: shard %d, offset %d, size %d", key, e.ShardId, e.Offset, e.Size)
	}
	if dataSize >= 0 && e.Offset+e.Size > dataSize {
		return fmt.Errorf("entry %q ends at byte %d, past the data file's %d", key, e.Offset+e.Size, dataSize)
	}
	width := map[typespb.DataType]int64{
		typespb.DataType_DT_FLOAT: 4, typespb.DataType_DT_DOUBLE: 8, typespb.DataType_DT_HALF: 2, typespb.DataType_DT_BFLOAT16: 2,
		typespb.DataType_DT_INT64: 8, typespb.DataType_DT_INT32: 4, typespb.DataType_DT_INT16: 2, typespb.DataType_DT_INT8: 1,
		typespb.DataType_DT_UINT8: 1, typespb.DataType_DT_BOOL: 1,
	}[e.Dtype]
	if e.Dtype == typespb.DataType_DT_STRING {
		return nil // variable-length: the size says it all
	}
	if width == 0 {
		return fmt.Errorf("entry %q has type %v", key, e.Dtype)
	}
	if e.Shape.GetUnknownRank() {
		return fmt.Errorf("entry %q has an unknown rank", key)
	}
	count := int64(1)
	for _, d := range e.Shape.GetDim() {
		if d.Size < 0 || (d.Size > 0 && count > (1<<40)/d.Size) {
			return fmt.Errorf("entry %q has dimension %d", key, d.Size)
		}
		count *= d.Size
	}
	if count*width != e.Size {
		return fmt.Errorf("entry %q: %d values of %d bytes, but %d bytes stored", key, count, width, e.Size)
	}
	return nil
}

// block returns the contents of the block at off, size bytes, after checking
// that it lies before end, is uncompressed and matches its checksum.
func block(data []byte, end, off, size int64) ([]byte, error) {
	if off < 0 || size < 0 || off > end || size > end-off-blockTrailer {
		return nil, fmt.Errorf("block [%d, +%d) outside the table", off, size)
	}
	contents := data[off : off+size]
	trailer := data[off+size : off+size+blockTrailer]
	if trailer[0] != 0 {
		return nil, fmt.Errorf("compression type %d; tfcat reads uncompressed tables", trailer[0])
	}
	crc := crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, trailer[:1])
	if masked := ((crc >> 15) | (crc << 17)) + 0xa282ead8; masked != binary.LittleEndian.Uint32(trailer[1:]) {
		return nil, errors.New("checksum mismatch")
	}
	return contents, nil
}

// eachEntry calls f for every key/value of a block, rebuilding the
// prefix-compressed keys.
func eachEntry(b []byte, f func(k, v []byte) error) error {
	if len(b) < 4 {
		return errors.New("block too short")
	}
	restarts := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
	limit := len(b) - 4 - 4*restarts
	if restarts < 0 || limit < 0 {
		return errors.New("bad restart array")
	}
	var key []byte
	for p := 0; p < limit; {
		shared, n1 := binary.Uvarint(b[p:limit])
		if n1 <= 0 {
			return errors.New("bad entry")
		}
		unshared, n2 := binary.Uvarint(b[p+n1 : limit])
		if n2 <= 0 {
			return errors.New("bad entry")
		}
		vlen, n3 := binary.Uvarint(b[p+n1+n2 : limit])
		if n3 <= 0 {
			return errors.New("bad entry")
		}
		p += n1 + n2 + n3
		if shared > uint64(len(key)) || unshared > uint64(limit-p) || vlen > uint64(limit-p)-unshared {
			return errors.New("entry overruns its block")
		}
		key = append(key[:shared], b[p:p+int(unshared)]...)
		v := b[p+int(unshared) : p+int(unshared)+int(vlen)]
		p += int(unshared) + int(vlen)
		if err := f(key, v); err != nil {
			return err
		}
	}
	return nil
}

func readHandle(b []byte) (int64, int) {
	off, _, n := readHandleAt(b, 0)
	return off, n
}

// readHandleAt reads a BlockHandle (two varints) at b[i:]; n is the end
// position, or ≤ 0 when malformed.
func readHandleAt(b []byte, i int) (off, size int64, n int) {
	if i >= len(b) {
		return 0, 0, -1
	}
	o, n1 := binary.Uvarint(b[i:])
	if n1 <= 0 {
		return 0, 0, -1
	}
	s, n2 := binary.Uvarint(b[i+n1:])
	if n2 <= 0 || o > 1<<40 || s > 1<<40 {
		return 0, 0, -1
	}
	return int64(o), int64(s), i + n1 + n2
}

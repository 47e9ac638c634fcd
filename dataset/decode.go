package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tfcat/tfcat/dataset/internal/libjpeg"
)

// DefaultMaxPixels is the pixel limit used when a limit of 0 is given: larger
// images are refused from their header, before their pixels are allocated.
const DefaultMaxPixels = 100_000_000

// maxScans bounds the progressive scans of a JPEG (a legitimate file has about
// ten; thousands of tiny scans are a denial-of-service pattern).
const maxScans = 500

// Errors that decoding wraps, for errors.Is.
var (
	// ErrFormat: the data is not a JPEG, PNG, BMP or GIF image.
	ErrFormat = errors.New("unsupported image format")
	// ErrTooLarge: the image's width times height exceeds the pixel limit.
	ErrTooLarge = errors.New("image exceeds the pixel limit")
	// ErrCorrupt: the data is truncated or damaged.
	ErrCorrupt = errors.New("corrupt or truncated image")
)

// Image is a decoded 8-bit image: Height rows of Width pixels of Channels
// bytes each, stored contiguously without padding. Three channels are in
// OpenCV's B, G, R order; one channel is grey.
type Image struct {
	Width, Height, Channels int     // size in pixels; 1 or 3 channels
	Pix                     []uint8 // Height*Width*Channels bytes, row after row
}

// NewImage allocates a zeroed image.
func NewImage(width, height, channels int) *Image {
	return &Image{Width: width, Height: height, Channels: channels, Pix: make([]uint8, width*height*channels)}
}

// Format names the container format that data starts with, as OpenCV's
// imread detects it from the content (never from a file name): "jpeg", "png",
// "bmp" and "gif" are decoded; other recognised formats ("webp", "tiff",
// ...) and unknown data are not.
func Format(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WEBP")):
		return "webp"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	case len(data) >= 12 && bytes.Equal(data[4:8], []byte("ftyp")):
		return "heif/avif"
	case bytes.HasPrefix(data, []byte("\x00\x00\x00\x0cjP  ")), bytes.HasPrefix(data, []byte("\xff\x4f\xff\x51")):
		return "jpeg2000"
	}
	return ""
}

// Decode decodes a JPEG, PNG, BMP or GIF image held in memory into 3-channel
// BGR (channels 3) or grey (channels 1), giving the pixels that
// cv2.imread(path, cv2.IMREAD_COLOR) or cv2.IMREAD_GRAYSCALE gives with
// opencv-python 4.10 for a file holding data, EXIF orientation included.
// Truncated and corrupt files, which imread may return partly grey, are
// errors wrapping ErrCorrupt. GIF, which that OpenCV cannot read, is decoded
// from its first frame. maxPixels limits
// width*height (0 means DefaultMaxPixels, negative means no limit); the
// limit is checked from the header before the pixels are allocated.
func Decode(data []byte, channels, maxPixels int) (*Image, error) {
	var s scratch
	img, err := s.decode(data, channels, maxPixels)
	if err != nil {
		return nil, err
	}
	out := *img
	out.Pix = append([]uint8(nil), img.Pix...)
	return &out, nil
}

// DecodeFile reads and decodes an image file as Decode does. Errors name the
// file.
func DecodeFile(path string, channels, maxPixels int) (*Image, error) {
	var s scratch
	data, err := s.readFile(path)
	if err != nil {
		return nil, err
	}
	img, err := s.decode(data, channels, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := *img
	out.Pix = append([]uint8(nil), img.Pix...)
	return &out, nil
}

// scratch holds buffers that one goroutine reuses from image to image, so
// that loading thousands of images creates little garbage.
type scratch struct {
	file []byte // file contents
	a, b []byte // decoded and re-oriented pixels
	rows []int32
	coef resizeCoefs
	jpeg libjpeg.Decoder
	eoi  []byte // JPEG data with an EOI marker appended
	pix  []byte // a resized image, when streaming
	fit  []byte // a resized image before padding or cropping
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// readFile reads path into s.file.
func (s *scratch) readFile(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO or a device could block.
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	if size > 1<<31 {
		return nil, fmt.Errorf("%s: file of %d bytes is too large", path, size)
	}
	s.file = grow(s.file, int(size)+1)
	n, err := io.ReadFull(f, s.file)
	if err == nil {
		// The file grew since Stat; read the rest.
		rest, err := io.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s.file = append(s.file, rest...)
		return s.file, nil
	}
	if err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s.file[:n], nil
}

func checkSize(w, h, maxPixels int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: invalid dimensions %dx%d", ErrCorrupt, w, h)
	}
	if maxPixels == 0 {
		maxPixels = DefaultMaxPixels
	}
	if n := int64(w) * int64(h); maxPixels > 0 && n > int64(maxPixels) {
		return fmt.Errorf("%w: %dx%d is %d pixels, limit %d", ErrTooLarge, w, h, n, maxPixels)
	}
	// Keep every later byte count well inside int on 32-bit platforms too.
	if int64(w)*int64(h) > (1<<31-1)/4 {
		return fmt.Errorf("%w: %dx%d is too many pixels", ErrTooLarge, w, h)
	}
	return nil
}

// decode decodes data into s's buffers; the result aliases s.a or s.b and is
// valid until s is used again.
func (s *scratch) decode(data []byte, channels, maxPixels int) (img *Image, err error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("channels must be 1 or 3, not %d", channels)
	}
	defer func() {
		// The decoders are written not to panic; this is a last line of
		// defence so that one bad file cannot stop a whole load.
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: decoder failure: %v", ErrCorrupt, r)
		}
	}()
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrCorrupt)
	}
	var orientation int
	switch f := Format(data); f {
	case "jpeg":
		img, err = s.decodeJPEG(data, channels, maxPixels)
		if err == nil {
			orientation = exifOrientation(jpegExif(data))
		}
	case "png":
		var exif []byte
		img, exif, err = s.decodePNG(data, channels, maxPixels)
		if err == nil {
			orientation = exifOrientation(exif)
		}
	case "bmp":
		img, err = s.decodeBMP(data, channels, maxPixels)
	case "gif":
		img, err = s.decodeGIF(data, channels, maxPixels)
	case "":
		return nil, fmt.Errorf("%w: not a JPEG, PNG, BMP or GIF file", ErrFormat)
	default:
		return nil, fmt.Errorf("%w: %s is not supported (JPEG, PNG, BMP or GIF)", ErrFormat, f)
	}
	if err != nil {
		return nil, err
	}
	if orientation >= 2 && orientation <= 8 {
		dst := &s.b
		if len(img.Pix) > 0 && len(s.b) > 0 && &img.Pix[0] == &s.b[0] {
			dst = &s.a
		}
		*dst = grow(*dst, len(img.Pix))
		img = orient(img, orientation, *dst)
	}
	return img, nil
}

// jpegSlack bounds libjpeg's allocations besides the whole-image
// coefficient buffers: tables, and row buffers of up to 512 bytes a column.
func jpegSlack(width int) int64 { return 16<<20 + 512*int64(width) }

func (s *scratch) decodeJPEG(data []byte, channels, maxPixels int) (*Image, error) {
	info, err := s.jpeg.DecodeInfo(data)
	if err != nil {
		return nil, fmt.Errorf("%w: jpeg: %v", ErrCorrupt, err)
	}
	if err := checkSize(info.Width, info.Height, maxPixels); err != nil {
		return nil, fmt.Errorf("jpeg: %w", err)
	}
	appended := !bytes.HasSuffix(data, []byte{0xFF, 0xD9})
	if appended {
		// Without its EOI marker, libjpeg reports the end of the file as
		// truncation (while still reading the last MCUs) and inserts an EOI
		// itself; cv2.imread then returns the complete image. Supplying the
		// marker gives the same pixels and keeps real truncation an error:
		// an EOI met inside the entropy-coded data is "premature end of
		// data segment".
		s.eoi = append(append(s.eoi[:0], data...), 0xFF, 0xD9)
		data = s.eoi
	}
	// The output buffer grows with the rows decoded (see libjpeg.Decode),
	// and libjpeg may use the coefficient buffers a multi-scan file needs
	// and no more: both stay within what DecodeMemory promises.
	opt := libjpeg.Options{Channels: channels, MaxScans: maxScans, MaxMemory: info.CoefBytes + jpegSlack(info.Width)}
	dinfo, pix, warn, err := s.jpeg.Decode(data, opt, s.a)
	if err != nil {
		if warn.Damaged && appended {
			return nil, fmt.Errorf("%w: jpeg: truncated file (%s)", ErrCorrupt, warn.Message)
		}
		return nil, fmt.Errorf("%w: jpeg: %v", ErrCorrupt, err)
	}
	s.a = pix
	if appended && dinfo.Incomplete {
		// A progressive file cut between scans decodes without a damaging
		// warning once it has an EOI, but it is truncated all the same
		// (and libjpeg-turbo 2.1 and 3.0 smooth such images differently).
		return nil, fmt.Errorf("%w: jpeg: truncated progressive file (some scans missing)", ErrCorrupt)
	}
	if warn.Damaged { // libjpeg.Decode fails on these; kept as a safeguard
		return nil, fmt.Errorf("%w: jpeg: %s", ErrCorrupt, warn.Message)
	}
	return &Image{Width: info.Width, Height: info.Height, Channels: channels, Pix: pix}, nil
}

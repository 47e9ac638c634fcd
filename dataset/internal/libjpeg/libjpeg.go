// Package libjpeg decodes JPEG images with the system libjpeg-turbo through
// cgo, with the settings OpenCV's imgcodecs uses (JDCT_ISLOW, fancy
// upsampling, BGR or grey output, OpenCV's CMYK formulas). Corrupt input is
// reported as an error; the C library never aborts the process.
package libjpeg

/*
#cgo LDFLAGS: -ljpeg
#include <stdlib.h>
#include "tfjpeg.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Color spaces of the JPEG data stream (libjpeg's J_COLOR_SPACE values).
const (
	ColorUnknown   = 0
	ColorGrayscale = 1
	ColorRGB       = 2
	ColorYCbCr     = 3
	ColorCMYK      = 4
	ColorYCCK      = 5
)

// Info describes a JPEG image from its header.
type Info struct {
	Width, Height int  // in pixels
	Components    int  // colour components in the file (1, 3 or 4)
	ColorSpace    int  // one of the Color constants
	Progressive   bool // progressive (multi-scan) coding
	// CoefBytes is the size of the whole-image coefficient buffers libjpeg
	// allocates for a multi-scan (progressive or non-interleaved) file.
	CoefBytes int64
	// Incomplete is set by Decode for a progressive image whose scans do
	// not refine every coefficient: a file cut between two scans. libjpeg
	// returns it with block smoothing.
	Incomplete bool
}

// Warning is a problem libjpeg reported while decoding without stopping.
type Warning struct {
	Count   int    // warnings emitted
	Damaged bool   // one of them means pixels are missing or wrong (truncation, bad entropy data)
	Message string // the first warning, or the first damaging one
}

// Error is a libjpeg error.
type Error struct {
	Message string // libjpeg's message
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

func bytePtr(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

// Decoder decodes JPEG images. Its zero value is ready to use. A Decoder is
// not safe for concurrent use.
type Decoder struct {
	res C.tfj_result
}

// DecodeInfo reads the JPEG header.
func DecodeInfo(data []byte) (Info, error) {
	var d Decoder
	return d.DecodeInfo(data)
}

// DecodeInfo reads the JPEG header.
func (d *Decoder) DecodeInfo(data []byte) (Info, error) {
	if len(data) == 0 {
		return Info{}, &Error{"empty input"}
	}
	res := &d.res
	if C.tfj_info(bytePtr(data), C.size_t(len(data)), res) != 0 {
		return Info{}, &Error{C.GoString(&res.err[0])}
	}
	return info(res), nil
}

func info(res *C.tfj_result) Info {
	return Info{
		Width:       int(res.width),
		Height:      int(res.height),
		Components:  int(res.components),
		ColorSpace:  int(res.color_space),
		Progressive: res.progressive != 0,
		Incomplete:  res.incomplete != 0,
		CoefBytes:   int64(res.coef_bytes),
	}
}

// Options set up one decode.
type Options struct {
	// Channels is 3 (BGR rows) or 1 (grey rows).
	Channels int
	// MaxScans bounds the scans of a progressive file (0: 1000).
	MaxScans int
	// MaxMemory bounds, in bytes, the whole-image buffers libjpeg allocates
	// (the coefficients of a progressive file); 0 means no bound.
	MaxMemory int64
}

// growStep is the first size of an output buffer grown while decoding.
const growStep = 4 << 20

// Decode decodes data into dst's storage as BGR rows (channels 3) or grey
// rows (channels 1), the pixels cv2.imread returns before EXIF orientation,
// and returns them. When dst's capacity is short of Width*Height*Channels
// bytes the buffer grows as rows are decoded, so that a file whose data
// ends early costs memory for the rows it holds, not for the size its
// header claims. Warnings that leave the pixels intact are returned along
// with them; one that means damaged pixels (truncation, bad entropy data)
// ends the decode at once with an error, and Warning.Damaged set.
func (d *Decoder) Decode(data []byte, opt Options, dst []byte) (Info, []byte, Warning, error) {
	if opt.Channels != 1 && opt.Channels != 3 {
		return Info{}, nil, Warning{}, errors.New("libjpeg: channels must be 1 or 3")
	}
	if len(data) == 0 {
		return Info{}, nil, Warning{}, &Error{"empty input"}
	}
	st := C.tfj_new()
	if st == nil {
		return Info{}, nil, Warning{}, &Error{"out of memory"}
	}
	defer C.tfj_free(st)
	res := &d.res
	warning := func() Warning {
		w := Warning{Count: int(res.warn_count), Damaged: res.warn_fatal != 0}
		if w.Count > 0 {
			w.Message = C.GoString(&res.warn[0])
		}
		return w
	}
	fail := func() (Info, []byte, Warning, error) {
		return info(res), nil, warning(), &Error{C.GoString(&res.err[0])}
	}
	if C.tfj_start(st, bytePtr(data), C.size_t(len(data)), C.int(opt.Channels), C.int(opt.MaxScans),
		C.long(opt.MaxMemory), res) != 0 {
		return fail()
	}
	in := info(res)
	stride := in.Width * opt.Channels
	total := stride * in.Height
	if in.Width <= 0 || in.Height <= 0 || total/in.Height != stride {
		return in, nil, warning(), &Error{"invalid dimensions"}
	}
	if cap(dst) >= total {
		dst = dst[:total]
	} else {
		dst = dst[:0]
	}
	chunk := max(1, (256<<10)/stride) // rows per call
	for row := 0; row < in.Height; {
		n := min(chunk, in.Height-row)
		if need := (row + n) * stride; need > len(dst) {
			size := min(total, max(need, 2*len(dst), growStep))
			grown := make([]byte, size)
			copy(grown, dst)
			dst = grown
		}
		if C.tfj_read(st, bytePtr(dst[row*stride:]), C.int(n), res) != 0 {
			return fail()
		}
		row += n
	}
	if C.tfj_finish(st, res) != 0 {
		return fail()
	}
	in = info(res)
	return in, dst[:total], warning(), nil
}

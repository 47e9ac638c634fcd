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

// Decoder decodes JPEG images. Its zero value is ready to use; reusing one
// avoids an allocation per image. A Decoder is not safe for concurrent use.
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
	}
}

// Decode decodes data into dst, which must hold Width*Height*channels bytes
// (see DecodeInfo), as BGR rows (channels 3) or grey rows (channels 1), the
// pixels cv2.imread returns before EXIF orientation. maxScans bounds the
// number of progressive scans (0: 1000). Warnings are returned along with
// the pixels; the caller decides whether they are acceptable.
func Decode(data []byte, channels, maxScans int, dst []byte) (Info, Warning, error) {
	var d Decoder
	return d.Decode(data, channels, maxScans, dst)
}

// Decode decodes data into dst; see the function Decode.
func (d *Decoder) Decode(data []byte, channels, maxScans int, dst []byte) (Info, Warning, error) {
	if channels != 1 && channels != 3 {
		return Info{}, Warning{}, errors.New("libjpeg: channels must be 1 or 3")
	}
	if len(data) == 0 {
		return Info{}, Warning{}, &Error{"empty input"}
	}
	res := &d.res
	rc := C.tfj_decode(bytePtr(data), C.size_t(len(data)), C.int(channels), C.int(maxScans),
		bytePtr(dst), C.size_t(len(dst)), res)
	w := Warning{Count: int(res.warn_count), Damaged: res.warn_fatal != 0}
	if w.Count > 0 {
		w.Message = C.GoString(&res.warn[0])
	}
	if rc != 0 {
		return info(res), w, &Error{C.GoString(&res.err[0])}
	}
	return info(res), w, nil
}

package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/gif"

	"github.com/tfcat/tfcat/dataset/internal/libjpeg"
)

// Header is what an encoded image says about itself before any pixel is
// decoded: enough to refuse it by size, or to reserve the memory its decoding
// takes (a server decoding images from many clients at once does both).
type Header struct {
	Format        string // "jpeg", "png", "bmp" or "gif" (see Format)
	Width, Height int    // in pixels, as the header claims them
	// fixed: bytes decoding needs whatever the output; perPixel: bytes per
	// pixel besides the output; outCopies: how many output-sized buffers
	// are live at the peak.
	fixed, perPixel, outCopies int64
}

// ReadHeader reads the header of a JPEG, PNG, BMP or GIF image held in
// memory. It fails, wrapping ErrFormat or ErrCorrupt, where Decode would fail
// before allocating the pixels.
func ReadHeader(data []byte) (Header, error) {
	h := Header{Format: Format(data), fixed: int64(len(data))}
	switch h.Format {
	case "jpeg":
		info, err := libjpeg.DecodeInfo(data)
		if err != nil {
			return h, fmt.Errorf("%w: jpeg: %v", ErrCorrupt, err)
		}
		h.Width, h.Height = info.Width, info.Height
		// The output grows with the rows decoded (up to two buffers live
		// while it is copied), libjpeg's buffers are capped at the
		// coefficients plus jpegSlack, a copy of the data gets an EOI.
		h.outCopies = 2
		h.fixed += info.CoefBytes + jpegSlack(info.Width) + int64(len(data)) + 2
		if o := exifOrientation(jpegExif(data)); o >= 2 && o <= 8 {
			h.outCopies++
		}
	case "png":
		info, err := scanPNG(data)
		if err != nil {
			return h, err
		}
		h.Width, h.Height = info.width, info.height
		// image/png's image: 1 byte a pixel for palettes, at most 4 for
		// other 8-bit images (tRNS makes grey NRGBA), 8 for 16-bit ones;
		// interlaced images also hold each pass. Two rows of inflated
		// data, a copy of the data when bad ancillary chunks are dropped.
		bpp := int64(4)
		switch {
		case info.depth > 8:
			bpp = 8
		case info.colorType == 3:
			bpp = 1
		}
		if info.interlaced {
			bpp *= 2
		}
		h.perPixel = bpp
		h.outCopies = 1
		h.fixed += 2*(1+(int64(info.width)*int64(info.depth)*int64(pngChannelsOf(info.colorType))+7)/8) + 64<<10
		if len(info.drop) > 0 {
			h.fixed += int64(len(data))
		}
		if o := exifOrientation(info.exif); o >= 2 && o <= 8 {
			h.outCopies++
		}
	case "bmp":
		if len(data) < 26 {
			return h, fmt.Errorf("%w: bmp: truncated header", ErrCorrupt)
		}
		if binary.LittleEndian.Uint32(data[14:]) == 12 {
			h.Width, h.Height = int(binary.LittleEndian.Uint16(data[18:])), int(binary.LittleEndian.Uint16(data[20:]))
		} else {
			h.Width, h.Height = int(int32(binary.LittleEndian.Uint32(data[18:]))), int(int32(binary.LittleEndian.Uint32(data[22:])))
			if h.Height < 0 && h.Height != -1<<31 {
				h.Height = -h.Height
			}
		}
		h.outCopies = 1
	case "gif":
		cfg, err := gif.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return h, fmt.Errorf("%w: gif: %v", ErrCorrupt, err)
		}
		h.Width, h.Height = cfg.Width, cfg.Height
		// image/gif's frame (1 byte a pixel, within the screen) and LZW state.
		h.perPixel, h.outCopies = 1, 1
		h.fixed += 64 << 10
	case "":
		return h, fmt.Errorf("%w: not a JPEG, PNG, BMP or GIF file", ErrFormat)
	default:
		return h, fmt.Errorf("%w: %s is not supported (JPEG, PNG, BMP or GIF)", ErrFormat, h.Format)
	}
	if h.Width <= 0 || h.Height <= 0 {
		return h, fmt.Errorf("%w: %s: invalid dimensions %dx%d", ErrCorrupt, h.Format, h.Width, h.Height)
	}
	return h, nil
}

// Pixels is Width×Height.
func (h Header) Pixels() int64 { return int64(h.Width) * int64(h.Height) }

// DecodeMemory bounds the memory that decoding the image into channels (1 or
// 3) holds at its peak, with Decode, DecodeFile or one of the Preprocess
// functions: the pixels, the decoders' own buffers and copies, and the
// EXIF-oriented copy where the header asks for one. The resized tensor is
// not included.
func (h Header) DecodeMemory(channels int) int64 {
	px := h.Pixels()
	out := px * int64(channels)
	// +1: Decode returns a copy of the decoded pixels.
	return h.fixed + h.perPixel*px + (h.outCopies+1)*out
}

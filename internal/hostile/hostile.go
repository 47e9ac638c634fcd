// Package hostile makes the images an attacker sends a decoder: headers that
// claim far more pixels than the data holds, and valid images that inflate
// to hundreds of megabytes. Tests, fuzz seeds and the load test share them.
package hostile

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
)

// JPEG is a baseline JPEG whose header claims w×h pixels (w, h < 65536) and
// whose entropy-coded data ends at once: the SOS header is followed by the
// EOI marker. It is about 600 bytes.
func JPEG(w, h int) []byte {
	if w <= 0 || h <= 0 || w > 65535 || h > 65535 {
		panic(fmt.Sprintf("hostile.JPEG: %dx%d is not a JPEG size", w, h))
	}
	m := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	data := b.Bytes()
	sof, sos := -1, -1
	for i := 2; i+3 < len(data); {
		if data[i] != 0xFF {
			panic("hostile.JPEG: unexpected encoder output")
		}
		marker := data[i+1]
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		switch marker {
		case 0xC0:
			sof = i
		case 0xDA:
			sos = i + 2 + n
		}
		if sos >= 0 {
			break
		}
		i += 2 + n
	}
	if sof < 0 || sos < 0 {
		panic("hostile.JPEG: no SOF0 or SOS in the encoder's output")
	}
	binary.BigEndian.PutUint16(data[sof+5:], uint16(h))
	binary.BigEndian.PutUint16(data[sof+7:], uint16(w))
	return append(data[:sos:sos], 0xFF, 0xD9)
}

// Gradient is a w×h photo-like JPEG of quality 90, a request a server should
// answer.
func Gradient(w, h int, seed uint8) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x) + seed, uint8(y) + seed, uint8(x+y)/2 + seed, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// PNGChunk is one PNG chunk: length, type, body and CRC.
func PNGChunk(typ string, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(body)))
	b.WriteString(typ)
	b.Write(body)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), body...)))
	return b.Bytes()
}

// PNG is a valid w×h 8-bit greyscale PNG, all black: a decompression bomb
// (10000×10000 is about 100 KB and decodes to 100 MB of grey, 300 MB of BGR).
func PNG(w, h int) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		panic(err)
	}
	row := make([]byte, 1+w) // filter type 0, then w zero samples
	for range h {
		zw.Write(row)
	}
	zw.Close()
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, PNGChunk("IHDR", ihdr)...)
	out = append(out, PNGChunk("IDAT", z.Bytes())...)
	return append(out, PNGChunk("IEND", nil)...)
}

// Truncate cuts data to its first n bytes (all of it when shorter).
func Truncate(data []byte, n int) []byte {
	return bytes.Clone(data[:min(n, len(data))])
}

package dataset

// EXIF orientation, read and applied the way OpenCV 4.10's imread does
// (imgcodecs exif.cpp and loadsave.cpp).

// jpegExif returns the payload of the first APP1 segment before the first SOS
// with its 6-byte header ("Exif\0\0") skipped, as OpenCV's JPEG decoder hands
// it to its EXIF reader. OpenCV does not check the "Exif" signature: an XMP
// APP1 placed before the EXIF one hides the orientation, and so it does here.
func jpegExif(data []byte) []byte {
	i := 2 // after SOI
	for i < len(data) {
		if data[i] != 0xFF {
			i++ // libjpeg skips garbage before a marker
			continue
		}
		for i < len(data) && data[i] == 0xFF {
			i++ // fill bytes
		}
		if i >= len(data) {
			return nil
		}
		m := data[i]
		i++
		switch {
		case m == 0xDA || m == 0xD9: // SOS, EOI: header reading ends
			return nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD8): // no length
			continue
		}
		if i+2 > len(data) {
			return nil
		}
		n := int(data[i])<<8 | int(data[i+1])
		if n < 2 {
			return nil
		}
		end := i + n
		if m == 0xE1 {
			if end > len(data) {
				return nil // libjpeg fails on a truncated marker
			}
			const offsetToTIFF = 6
			payload := data[i+2 : end]
			if len(payload) <= offsetToTIFF {
				return nil
			}
			return payload[offsetToTIFF:]
		}
		i = end
	}
	return nil
}

// exifOrientation returns the Orientation tag (0x0112) of IFD0 in a TIFF-
// structured EXIF block, or 0. It follows OpenCV's ExifReader: byte order
// "II" is little-endian and anything else big-endian; the value is the
// 16-bit word at offset 8 of the entry whatever its type; of repeated tags
// the first counts; entries are parsed in order and parsing stops at the
// first entry whose data lies outside the block, keeping the tags read
// before it.
func exifOrientation(d []byte) int {
	if len(d) == 0 {
		return 0
	}
	le := len(d) > 1 && d[0] == d[1] && d[0] == 'I'
	bad := false
	u16 := func(off uint64) uint64 {
		if off+1 >= uint64(len(d)) {
			bad = true
			return 0
		}
		if le {
			return uint64(d[off]) | uint64(d[off+1])<<8
		}
		return uint64(d[off])<<8 | uint64(d[off+1])
	}
	u32 := func(off uint64) uint64 {
		if off+3 >= uint64(len(d)) {
			bad = true
			return 0
		}
		if le {
			return uint64(d[off]) | uint64(d[off+1])<<8 | uint64(d[off+2])<<16 | uint64(d[off+3])<<24
		}
		return uint64(d[off])<<24 | uint64(d[off+1])<<16 | uint64(d[off+2])<<8 | uint64(d[off+3])
	}
	// rationals reads n numerator/denominator pairs at p, only to check that
	// they lie inside the block.
	rationals := func(p uint64, n int) {
		for i := uint64(0); i < uint64(n) && !bad; i++ {
			u32(p + 8*i)
			u32(p + 8*i + 4)
		}
	}
	if u16(2) != 0x002A || bad {
		return 0
	}
	off := u32(4)
	if bad {
		return 0
	}
	n := u16(off)
	if bad {
		return 0
	}
	off += 2
	for e := uint64(0); e < n; e++ {
		tag := u16(off)
		if bad {
			return 0
		}
		switch tag {
		case 0x0112: // Orientation
			v := u16(off + 8)
			if bad {
				return 0
			}
			return int(v)
		case 0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x8298: // strings
			size := u32(off + 4)
			data := uint64(8)
			if size > 4 {
				data = u32(off + 8)
			}
			if bad || data > uint64(len(d)) || data+size > uint64(len(d)) {
				return 0
			}
		case 0x011A, 0x011B: // X/YResolution: one rational
			rationals(u32(off+8), 1)
		case 0x013E: // WhitePoint: two rationals
			rationals(u32(off+8), 2)
		case 0x013F: // PrimaryChromaticities: six rationals
			rationals(u32(off+8), 6)
		case 0x0211: // YCbCrCoefficients: three rationals
			rationals(u32(off+8), 3)
		case 0x0213, 0x0128: // YCbCrPositioning, ResolutionUnit
			u16(off + 8)
		case 0x0214: // ReferenceBlackWhite: six rationals
			rationals(u32(off+8), 6)
		}
		if bad {
			return 0
		}
		off += 12
	}
	return 0
}

// orient applies EXIF orientation o (2..8) to img, writing into dst (which
// must hold len(img.Pix) bytes), as OpenCV's ExifTransform does.
func orient(img *Image, o int, dst []uint8) *Image {
	w, h, c := img.Width, img.Height, img.Channels
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := &Image{Width: ow, Height: oh, Channels: c, Pix: dst[:len(img.Pix)]}
	src := img.Pix
	for y := 0; y < oh; y++ {
		row := out.Pix[y*ow*c : (y+1)*ow*c]
		for x := 0; x < ow; x++ {
			var sx, sy int
			switch o {
			case 2: // flip horizontally
				sx, sy = w-1-x, y
			case 3: // rotate 180
				sx, sy = w-1-x, h-1-y
			case 4: // flip vertically
				sx, sy = x, h-1-y
			case 5: // transpose
				sx, sy = y, x
			case 6: // rotate 90 clockwise
				sx, sy = y, h-1-x
			case 7: // transverse
				sx, sy = w-1-y, h-1-x
			case 8: // rotate 90 counter-clockwise
				sx, sy = w-1-y, x
			}
			p := (sy*w + sx) * c
			copy(row[x*c:x*c+c], src[p:p+c])
		}
	}
	return out
}

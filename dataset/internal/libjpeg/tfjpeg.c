#include "tfjpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	tfj_result *res;
} tfj_err;

typedef struct {
	struct jpeg_progress_mgr pub;
	int max_scans;
	tfj_err *err;
} tfj_progress;

static void tfj_error_exit(j_common_ptr c) {
	tfj_err *e = (tfj_err *)c->err;
	char buf[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, buf);
	snprintf(e->res->err, TFJ_MSG_LEN, "%s", buf);
	longjmp(e->jb, 1);
}

static int tfj_fatal_warning(int code) {
	switch (code) {
	case JWRN_HIT_MARKER:
	case JWRN_HUFF_BAD_CODE:
	case JWRN_ARITH_BAD_CODE:
	case JWRN_JPEG_EOF:
	case JWRN_MUST_RESYNC:
	case JWRN_NOT_SEQUENTIAL:
		return 1;
	}
	return 0;
}

static void tfj_emit_message(j_common_ptr c, int level) {
	tfj_err *e = (tfj_err *)c->err;
	if (level >= 0)
		return; // trace messages
	c->err->num_warnings++;
	e->res->warn_count++;
	int fatal = tfj_fatal_warning(c->err->msg_code);
	if (e->res->warn_count == 1 || (fatal && !e->res->warn_fatal)) {
		char buf[JMSG_LENGTH_MAX];
		(*c->err->format_message)(c, buf);
		snprintf(e->res->warn, TFJ_MSG_LEN, "%s", buf);
	}
	if (fatal)
		e->res->warn_fatal = 1;
}

static void tfj_output_message(j_common_ptr c) { (void)c; }

static void tfj_progress_monitor(j_common_ptr c) {
	j_decompress_ptr d = (j_decompress_ptr)c;
	tfj_progress *p = (tfj_progress *)c->progress;
	if (d->input_scan_number > p->max_scans) {
		snprintf(p->err->res->err, TFJ_MSG_LEN,
		         "more than %d progressive scans", p->max_scans);
		longjmp(p->err->jb, 1);
	}
}

// tfj_setup clears the result and the decompressor and installs the error
// manager that returns through e->jb (the caller's setjmp) instead of exiting.
static void tfj_setup(j_decompress_ptr d, tfj_err *e, tfj_result *res) {
	memset(res, 0, sizeof *res);
	memset(d, 0, sizeof *d);
	d->err = jpeg_std_error(&e->pub);
	e->pub.error_exit = tfj_error_exit;
	e->pub.emit_message = tfj_emit_message;
	e->pub.output_message = tfj_output_message;
	e->res = res;
}

static void tfj_fill_info(j_decompress_ptr d, tfj_result *res) {
	res->width = (int)d->image_width;
	res->height = (int)d->image_height;
	res->components = d->num_components;
	res->color_space = (int)d->jpeg_color_space;
	res->progressive = d->progressive_mode ? 1 : 0;
}

int tfj_info(const unsigned char *data, size_t len, tfj_result *res) {
	struct jpeg_decompress_struct d;
	tfj_err e;
	tfj_setup(&d, &e, res);
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		return 1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, data, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	tfj_fill_info(&d, res);
	jpeg_destroy_decompress(&d);
	return 0;
}

// OpenCV imgcodecs (utils.cpp): Adobe-inverted CMYK to BGR / grey.
#define TFJ_SCALE 14
#define TFJ_CR 4899 /* (int)(0.299*(1 << 14) + 0.5) */
#define TFJ_CG 9617 /* (int)(0.587*(1 << 14) + 0.5) */
#define TFJ_CB (16384 - TFJ_CR - TFJ_CG)

static void tfj_cmyk_row(const unsigned char *cmyk, unsigned char *out, int width, int channels) {
	for (int i = 0; i < width; i++, cmyk += 4) {
		int c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
		c = k - ((255 - c) * k >> 8);
		m = k - ((255 - m) * k >> 8);
		y = k - ((255 - y) * k >> 8);
		if (channels == 3) {
			out[3 * i + 0] = (unsigned char)y;
			out[3 * i + 1] = (unsigned char)m;
			out[3 * i + 2] = (unsigned char)c;
		} else {
			int t = (y * TFJ_CB + m * TFJ_CG + c * TFJ_CR + (1 << (TFJ_SCALE - 1))) >> TFJ_SCALE;
			out[i] = (unsigned char)t;
		}
	}
}

int tfj_decode(const unsigned char *data, size_t len, int channels, int max_scans,
               unsigned char *out, size_t cap, tfj_result *res) {
	struct jpeg_decompress_struct d;
	tfj_err e;
	tfj_progress prog;
	tfj_setup(&d, &e, res);
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		return 1;
	}
	jpeg_create_decompress(&d);
	memset(&prog, 0, sizeof prog);
	prog.pub.progress_monitor = tfj_progress_monitor;
	prog.max_scans = max_scans > 0 ? max_scans : 1000;
	prog.err = &e;
	d.progress = &prog.pub;
	jpeg_mem_src(&d, data, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	tfj_fill_info(&d, res);

	int cmyk = d.num_components == 4;
	if (cmyk) {
		d.out_color_space = JCS_CMYK;
	} else if (channels == 3) {
		d.out_color_space = JCS_EXT_BGR;
	} else {
		d.out_color_space = JCS_GRAYSCALE;
	}
	if ((size_t)d.image_width * (size_t)d.image_height * (size_t)channels > cap) {
		snprintf(res->err, TFJ_MSG_LEN, "output buffer too small");
		jpeg_destroy_decompress(&d);
		return 1;
	}
	jpeg_start_decompress(&d);
	// A multi-scan image is read whole by jpeg_start_decompress. If some
	// coefficients never got their last refinement scan, the file was cut
	// short (or written so): libjpeg then applies block smoothing.
	if (d.progressive_mode && d.coef_bits != NULL) {
		for (int ci = 0; ci < d.num_components && !res->incomplete; ci++)
			for (int k = 0; k < DCTSIZE2; k++)
				if (d.coef_bits[ci][k] != 0) {
					res->incomplete = 1;
					break;
				}
	}
	if ((int)d.output_width != res->width || (int)d.output_height != res->height ||
	    d.output_components != (cmyk ? 4 : channels)) {
		snprintf(res->err, TFJ_MSG_LEN, "unexpected output geometry");
		jpeg_destroy_decompress(&d);
		return 1;
	}
	size_t stride = (size_t)d.output_width * (size_t)channels;
	JSAMPARRAY tmp = NULL;
	if (cmyk)
		tmp = (*d.mem->alloc_sarray)((j_common_ptr)&d, JPOOL_IMAGE, d.output_width * 4, 1);
	while (d.output_scanline < d.output_height) {
		unsigned char *row = out + (size_t)d.output_scanline * stride;
		if (cmyk) {
			if (jpeg_read_scanlines(&d, tmp, 1) != 1)
				break;
			tfj_cmyk_row(tmp[0], row, (int)d.output_width, channels);
		} else {
			JSAMPROW rows[1] = {row};
			if (jpeg_read_scanlines(&d, rows, 1) != 1)
				break;
		}
	}
	if (d.output_scanline < d.output_height) {
		snprintf(res->err, TFJ_MSG_LEN, "decoder stopped at row %u of %u",
		         d.output_scanline, d.output_height);
		jpeg_destroy_decompress(&d);
		return 1;
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return 0;
}

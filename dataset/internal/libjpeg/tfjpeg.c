#include "tfjpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
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
	if (fatal) {
		// The pixels are damaged from here on: stop now rather than decode
		// the rest of the declared image from nothing (a few hundred bytes
		// claiming 10000x10000 would otherwise cost seconds). Images that
		// decode never see such a warning, so their pixels are unchanged.
		e->res->warn_fatal = 1;
		snprintf(e->res->err, TFJ_MSG_LEN, "%s", e->res->warn);
		longjmp(e->jb, 1);
	}
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
	// jdcoefct.c's whole-image virtual arrays: blocks rounded up to the
	// sampling factors, 64 coefficients of 2 bytes each.
	long long coef = 0;
	for (int ci = 0; ci < d->num_components; ci++) {
		jpeg_component_info *c = &d->comp_info[ci];
		long long w = c->width_in_blocks, h = c->height_in_blocks;
		if (c->h_samp_factor > 0)
			w = (w + c->h_samp_factor - 1) / c->h_samp_factor * c->h_samp_factor;
		if (c->v_samp_factor > 0)
			h = (h + c->v_samp_factor - 1) / c->v_samp_factor * c->v_samp_factor;
		coef += w * h * (long long)sizeof(JBLOCK);
	}
	res->coef_bytes = coef;
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

struct tfj_state {
	struct jpeg_decompress_struct d;
	tfj_err e;
	tfj_progress prog;
	int channels, cmyk, created;
	JSAMPARRAY tmp;
};

static int tfj_fail(tfj_state *st) {
	if (st->created) {
		jpeg_destroy_decompress(&st->d);
		st->created = 0;
	}
	return 1;
}

tfj_state *tfj_new(void) { return (tfj_state *)calloc(1, sizeof(tfj_state)); }

void tfj_free(tfj_state *st) {
	if (st == NULL)
		return;
	if (st->created)
		jpeg_destroy_decompress(&st->d);
	free(st);
}

int tfj_start(tfj_state *st, const unsigned char *data, size_t len, int channels, int max_scans,
              long max_memory, tfj_result *res) {
	if (st->created) {
		jpeg_destroy_decompress(&st->d);
		st->created = 0;
	}
	tfj_setup(&st->d, &st->e, res);
	st->channels = channels;
	st->tmp = NULL;
	if (setjmp(st->e.jb))
		return tfj_fail(st);
	jpeg_create_decompress(&st->d);
	st->created = 1;
	// With libjpeg-turbo's jmemnobs, whole-image buffers (the coefficients
	// of a progressive file) that would exceed this fail before they are
	// allocated ("Backing store not supported").
	if (max_memory > 0)
		st->d.mem->max_memory_to_use = max_memory;
	memset(&st->prog, 0, sizeof st->prog);
	st->prog.pub.progress_monitor = tfj_progress_monitor;
	st->prog.max_scans = max_scans > 0 ? max_scans : 1000;
	st->prog.err = &st->e;
	st->d.progress = &st->prog.pub;
	jpeg_mem_src(&st->d, data, (unsigned long)len);
	jpeg_read_header(&st->d, TRUE);
	tfj_fill_info(&st->d, res);

	st->cmyk = st->d.num_components == 4;
	if (st->cmyk) {
		st->d.out_color_space = JCS_CMYK;
	} else if (channels == 3) {
		st->d.out_color_space = JCS_EXT_BGR;
	} else {
		st->d.out_color_space = JCS_GRAYSCALE;
	}
	jpeg_start_decompress(&st->d);
	// A multi-scan image is read whole by jpeg_start_decompress. If some
	// coefficients never got their last refinement scan, the file was cut
	// short (or written so): libjpeg then applies block smoothing.
	if (st->d.progressive_mode && st->d.coef_bits != NULL) {
		for (int ci = 0; ci < st->d.num_components && !res->incomplete; ci++)
			for (int k = 0; k < DCTSIZE2; k++)
				if (st->d.coef_bits[ci][k] != 0) {
					res->incomplete = 1;
					break;
				}
	}
	if ((int)st->d.output_width != res->width || (int)st->d.output_height != res->height ||
	    st->d.output_components != (st->cmyk ? 4 : channels)) {
		snprintf(res->err, TFJ_MSG_LEN, "unexpected output geometry");
		return tfj_fail(st);
	}
	if (st->cmyk)
		st->tmp = (*st->d.mem->alloc_sarray)((j_common_ptr)&st->d, JPOOL_IMAGE, st->d.output_width * 4, 1);
	return 0;
}

int tfj_read(tfj_state *st, unsigned char *out, int rows, tfj_result *res) {
	if (!st->created) {
		snprintf(res->err, TFJ_MSG_LEN, "decoder not started");
		return 1;
	}
	if (setjmp(st->e.jb))
		return tfj_fail(st);
	size_t stride = (size_t)st->d.output_width * (size_t)st->channels;
	for (int i = 0; i < rows; i++) {
		if (st->d.output_scanline >= st->d.output_height) {
			snprintf(res->err, TFJ_MSG_LEN, "read past the last row");
			return tfj_fail(st);
		}
		unsigned char *row = out + (size_t)i * stride;
		unsigned int at = st->d.output_scanline;
		if (st->cmyk) {
			if (jpeg_read_scanlines(&st->d, st->tmp, 1) != 1)
				goto stopped;
			tfj_cmyk_row(st->tmp[0], row, (int)st->d.output_width, st->channels);
		} else {
			JSAMPROW rows1[1] = {row};
			if (jpeg_read_scanlines(&st->d, rows1, 1) != 1)
				goto stopped;
		}
		continue;
	stopped:
		snprintf(res->err, TFJ_MSG_LEN, "decoder stopped at row %u of %u", at, st->d.output_height);
		return tfj_fail(st);
	}
	return 0;
}

int tfj_finish(tfj_state *st, tfj_result *res) {
	if (!st->created) {
		snprintf(res->err, TFJ_MSG_LEN, "decoder not started");
		return 1;
	}
	if (setjmp(st->e.jb))
		return tfj_fail(st);
	jpeg_finish_decompress(&st->d);
	jpeg_destroy_decompress(&st->d);
	st->created = 0;
	return 0;
}

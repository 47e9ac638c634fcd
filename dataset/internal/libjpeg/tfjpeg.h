// Small C shim around libjpeg(-turbo) for package libjpeg. Errors are
// reported through a setjmp/longjmp error manager, never by exit().

#ifndef TFCAT_TFJPEG_H
#define TFCAT_TFJPEG_H

#include <stddef.h>

#define TFJ_MSG_LEN 200

typedef struct {
	int width, height, components, color_space, progressive;
	long long coef_bytes; // whole-image coefficient buffers of a multi-scan file
	int incomplete;     // progressive image whose coefficients are not all refined
	int warn_count;     // number of libjpeg warnings
	int warn_fatal;     // 1 if one of them means the pixels are damaged
	char warn[TFJ_MSG_LEN];  // first warning (fatal one preferred)
	char err[TFJ_MSG_LEN];   // error message when the call fails
} tfj_result;

// tfj_info reads the header. Returns 0 on success.
int tfj_info(const unsigned char *data, size_t len, tfj_result *res);

// tfj_state is one decode in progress, kept between the calls below (each
// sets its own setjmp, so libjpeg's errors return from the call they occur
// in). Create with tfj_new, release with tfj_free.
typedef struct tfj_state tfj_state;

tfj_state *tfj_new(void);
void tfj_free(tfj_state *st);

// tfj_start reads the header and starts decompression (a progressive file is
// read whole here) as BGR (channels 3) or grey (channels 1), with libjpeg's
// defaults (JDCT_ISLOW, fancy upsampling). max_scans bounds the scans of a
// progressive file; max_memory (bytes, 0: none) bounds libjpeg's whole-image
// buffers. A warning that means damaged pixels ends the decode as an error.
// Returns 0 on success.
int tfj_start(tfj_state *st, const unsigned char *data, size_t len, int channels, int max_scans,
              long max_memory, tfj_result *res);

// tfj_read decodes the next rows (width*channels bytes each) into out.
// Four-component (CMYK/YCCK) images are converted the way OpenCV's imgcodecs
// converts them. Returns 0 on success.
int tfj_read(tfj_state *st, unsigned char *out, int rows, tfj_result *res);

// tfj_finish ends the decode after the last row. Returns 0 on success.
int tfj_finish(tfj_state *st, tfj_result *res);

#endif

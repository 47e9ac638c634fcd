// Small C shim around libjpeg(-turbo) for package libjpeg. Errors are
// reported through a setjmp/longjmp error manager, never by exit().

#ifndef TFCAT_TFJPEG_H
#define TFCAT_TFJPEG_H

#include <stddef.h>

#define TFJ_MSG_LEN 200

typedef struct {
	int width, height, components, color_space, progressive;
	int incomplete;     // progressive image whose coefficients are not all refined
	int warn_count;     // number of libjpeg warnings
	int warn_fatal;     // 1 if one of them means the pixels are damaged
	char warn[TFJ_MSG_LEN];  // first warning (fatal one preferred)
	char err[TFJ_MSG_LEN];   // error message when the call fails
} tfj_result;

// tfj_info reads the header. Returns 0 on success.
int tfj_info(const unsigned char *data, size_t len, tfj_result *res);

// tfj_decode decodes the whole image into out (width*height*channels bytes,
// capacity cap) as BGR (channels 3) or grey (channels 1), with libjpeg's
// defaults (JDCT_ISLOW, fancy upsampling). Four-component (CMYK/YCCK) images
// are converted the way OpenCV's imgcodecs converts them. Returns 0 on success.
int tfj_decode(const unsigned char *data, size_t len, int channels, int max_scans,
               unsigned char *out, size_t cap, tfj_result *res);

#endif

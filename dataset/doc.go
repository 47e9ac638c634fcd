// Package dataset loads labelled images from class folders and preprocesses
// them exactly as the TF1 cats-vs-dogs tutorial does in Python:
//
//	img = cv2.imread(path)  # or cv2.IMREAD_GRAYSCALE
//	img = cv2.resize(img, (size, size), 0, 0, cv2.INTER_LINEAR)
//	img = np.multiply(img.astype(np.float32), 1.0 / 255.0)
//
// The values are equal bit for bit to those of opencv-python 4.10 and NumPy 2
// on x86-64: JPEG is decoded by libjpeg-turbo (cgo) with OpenCV's settings,
// PNG and BMP reproduce OpenCV's conversions (16-bit, alpha, palettes,
// low-bit grey, libpng's grey conversion with gamma), EXIF orientation is
// applied as imread applies it, and Resize is OpenCV's fixed-point bilinear
// arithmetic. GIF, which OpenCV 4.10 cannot read, is decoded from its first
// frame without a reference. The parity test (parity_test.go) checks all of
// this against the Python stack on a generated corpus.
//
// Load decodes a whole folder in parallel and holds the images as uint8;
// Open streams them per batch. Both shuffle with a seed, split off a
// validation set and serve batches with the tutorial's next_batch semantics.
// Preprocess and PreprocessFile handle single images; ExportFashionMNIST
// writes Fashion-MNIST as class folders.
package dataset

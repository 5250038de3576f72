// libpng behind one checked call. libpng reports errors by longjmp, which Swift cannot catch, so
// the setjmp lives here: the call returns 0, or -1 with libpng's message in `message`.
#ifndef CPNG_SHIM_H
#define CPNG_SHIM_H
#include <png.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  jmp_buf jump;
  char *message;
  size_t capacity;
} tessera_png_error;

static void tessera_png_on_error(png_structp png, png_const_charp text) {
  tessera_png_error *e = (tessera_png_error *)png_get_error_ptr(png);
  if (e->capacity > 0) {
    strncpy(e->message, text ? text : "libpng error", e->capacity - 1);
    e->message[e->capacity - 1] = 0;
  }
  longjmp(e->jump, 1);
}

static void tessera_png_on_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

/// Writes a PNG of `height` rows of `width` pixels, `channels` (1 grey, 3 RGB) samples per pixel
/// of `bit_depth` (8 or 16) bits; `pixels` holds the rows one after another, 16-bit samples in
/// host order (swapped to PNG's big-endian here). Returns 0, or -1 with `message` set (a file
/// that cannot be opened or written gives the system's reason).
static inline int tessera_png_write(
    const char *path, int width, int height, int channels, int bit_depth, const void *pixels, char *message,
    size_t capacity) {
  FILE *file = fopen(path, "wb");
  if (!file) {
    snprintf(message, capacity, "%s", strerror(errno));
    return -1;
  }
  tessera_png_error e;
  e.message = message;
  e.capacity = capacity;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, tessera_png_on_error, tessera_png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    snprintf(message, capacity, "libpng could not allocate its state");
    png_destroy_write_struct(&png, &info);
    fclose(file);
    return -1;
  }
  if (setjmp(e.jump)) {
    png_destroy_write_struct(&png, &info);
    fclose(file);
    return -1;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 6);
  png_write_info(png, info);
  if (bit_depth == 16) {
    unsigned short probe = 1;
    if (*(unsigned char *)&probe == 1) png_set_swap(png);
  }
  size_t row_bytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
  for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)pixels + (size_t)y * row_bytes);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  if (fclose(file) != 0) {
    snprintf(message, capacity, "%s", strerror(errno));
    return -1;
  }
  return 0;
}

/// The libpng version this build runs with.
static inline const char *tessera_png_version(void) { return png_get_libpng_ver(NULL); }

#endif

// Inflate speed on the raw chunks of an HDF5 gzip dataset, one thread: zlib `inflate`, ISA-L
// `isal_inflate` / `isal_inflate_stateless` (ISAL_ZLIB: parses the header, checks the adler32),
// libdeflate `libdeflate_zlib_decompress` (checks the adler32) with one decompressor reused or one
// per call. Every decoder's output is compared with zlib's. Times are thread CPU time, so a busy
// machine stretches them less than wall time; min and median of REPS passes over all chunks.
//   inflate_bench FILE.h5 DATASET [REPS]
#include <hdf5.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

typedef struct { unsigned char *data; size_t size; } chunk_t;
static chunk_t *chunks;
static size_t nchunks, chunkbytes;
static struct inflate_state isal_state;
static struct libdeflate_decompressor *reused;

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int zlib_one(const chunk_t *c, unsigned char *out) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, 15 + 32) != Z_OK) return -1;
  s.next_in = c->data; s.avail_in = c->size; s.next_out = out; s.avail_out = chunkbytes;
  int r = inflate(&s, Z_FINISH);
  size_t n = s.total_out;
  inflateEnd(&s);
  return r == Z_STREAM_END && n == chunkbytes ? 0 : -1;
}
static int isal_common(const chunk_t *c, unsigned char *out, int stateless) {
  struct inflate_state *st = &isal_state;
  isal_inflate_init(st);
  st->crc_flag = ISAL_ZLIB; st->next_in = c->data; st->avail_in = c->size; st->next_out = out; st->avail_out = chunkbytes;
  int r = stateless ? isal_inflate_stateless(st) : isal_inflate(st);
  return r == ISAL_DECOMP_OK && st->total_out == chunkbytes && (stateless || st->block_state == ISAL_BLOCK_FINISH) ? 0 : -1;
}
static int isal_one(const chunk_t *c, unsigned char *out) { return isal_common(c, out, 0); }
static int isal_stateless_one(const chunk_t *c, unsigned char *out) { return isal_common(c, out, 1); }
static int libdeflate_reused_one(const chunk_t *c, unsigned char *out) {
  return libdeflate_zlib_decompress(reused, c->data, c->size, out, chunkbytes, NULL) == LIBDEFLATE_SUCCESS ? 0 : -1;
}
static int libdeflate_per_call_one(const chunk_t *c, unsigned char *out) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  int r = libdeflate_zlib_decompress(d, c->data, c->size, out, chunkbytes, NULL) == LIBDEFLATE_SUCCESS ? 0 : -1;
  libdeflate_free_decompressor(d);
  return r;
}
static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void run(const char *name, int (*one)(const chunk_t *, unsigned char *), unsigned char *out,
                const unsigned char *reference, int reps) {
  double *t = malloc(reps * sizeof *t);
  memset(out, 0xA5, nchunks * chunkbytes);
  for (int r = 0; r < reps; r++) {
    double t0 = cpu_now();
    for (size_t i = 0; i < nchunks; i++)
      if (one(&chunks[i], out + i * chunkbytes)) { fprintf(stderr, "%s: chunk %zu failed\n", name, i); exit(1); }
    t[r] = cpu_now() - t0;
  }
  if (reference && memcmp(out, reference, nchunks * chunkbytes)) { fprintf(stderr, "%s: output differs\n", name); exit(1); }
  qsort(t, reps, sizeof *t, by_value);
  double mib = nchunks * chunkbytes / 1048576.0;
  printf("  %-22s MiB/s min-time %6.0f  median %6.0f\n", name, mib / t[0], mib / t[reps / 2]);
  free(t);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s FILE.h5 DATASET [REPS]\n", argv[0]); return 2; }
  int reps = argc > 3 ? atoi(argv[3]) : 21;
  hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = f < 0 ? -1 : H5Dopen2(f, argv[2], H5P_DEFAULT);
  if (d < 0) return 1;
  hid_t space = H5Dget_space(d), dcpl = H5Dget_create_plist(d), type = H5Dget_type(d);
  hsize_t cdims[8];
  int rank = H5Pget_chunk(dcpl, 8, cdims);
  if (rank <= 0) { fprintf(stderr, "not chunked\n"); return 1; }
  chunkbytes = H5Tget_size(type);
  for (int i = 0; i < rank; i++) chunkbytes *= cdims[i];
  int shuffle = 0, deflate = 0;
  for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
    unsigned flags, values[8];
    size_t nvalues = 8;
    H5Z_filter_t id = H5Pget_filter2(dcpl, i, &flags, &nvalues, values, 0, NULL, NULL);
    shuffle |= id == H5Z_FILTER_SHUFFLE;
    deflate |= id == H5Z_FILTER_DEFLATE;
  }
  if (!deflate) { fprintf(stderr, "no deflate filter\n"); return 1; }
  hsize_t n;
  H5Dget_num_chunks(d, space, &n);
  nchunks = n;
  chunks = calloc(n, sizeof *chunks);
  size_t stored = 0;
  for (hsize_t i = 0; i < n; i++) {
    hsize_t offset[8], size;
    unsigned mask;
    uint32_t mask2;
    haddr_t address;
    H5Dget_chunk_info(d, space, i, offset, &mask, &address, &size);
    chunks[i].size = size;
    chunks[i].data = malloc(size);
    stored += size;
    H5Dread_chunk(d, H5P_DEFAULT, offset, &mask2, chunks[i].data);
  }
  printf("%s %s: chunks", argv[1], argv[2]);
  for (int i = 0; i < rank; i++) printf("%s%llu", i ? "x" : " ", (unsigned long long)cdims[i]);
  printf(", %zu of them, shuffle %s, ratio %.2f, %.1f MiB decoded per pass, %d passes\n", nchunks, shuffle ? "on" : "off",
         (double)nchunks * chunkbytes / stored, nchunks * chunkbytes / 1048576.0, reps);
  unsigned char *reference = malloc(nchunks * chunkbytes), *out = malloc(nchunks * chunkbytes);
  reused = libdeflate_alloc_decompressor();
  run("zlib inflate", zlib_one, reference, NULL, reps);
  run("isal_inflate", isal_one, out, reference, reps);
  run("isal_inflate_stateless", isal_stateless_one, out, reference, reps);
  run("libdeflate (reused)", libdeflate_reused_one, out, reference, reps);
  run("libdeflate (per call)", libdeflate_per_call_one, out, reference, reps);
  return 0;
}

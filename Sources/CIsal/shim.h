// ISA-L's igzip inflater (Debian libisal-dev), for zlib streams in one call.
#pragma once
#include <isa-l.h>
#include <isa-l/igzip_lib.h>
#include <stdint.h>
#include <stdlib.h>

/// Inflates the zlib stream `in` (`in_size` bytes: header, deflate data, adler32) into `out` in one
/// call (`isal_inflate_stateless` with ISAL_ZLIB: the header is parsed and the adler32 checked).
/// Returns the number of bytes written, or -1 when ISA-L refuses the stream (corrupt, a preset
/// dictionary, a window over 32 KiB, larger than `out_size`, sizes beyond 32 bits) or its 87 KB state cannot be allocated.
static inline long long tessera_isal_inflate_zlib(const void *in, size_t in_size, void *out, size_t out_size) {
  if (in_size > UINT32_MAX || out_size > UINT32_MAX) return -1;
  // A window larger than 32 KiB (CINFO > 7) is invalid (RFC 1950); zlib and libdeflate refuse it, and
  // so must this, or whether such a stream decodes would depend on which inflater a process chose.
  if (in_size < 2 || (((const uint8_t *)in)[0] >> 4) > 7) return -1;
  struct inflate_state *state = (struct inflate_state *)malloc(sizeof(struct inflate_state));
  if (state == NULL) return -1;
  isal_inflate_init(state);
  state->crc_flag = ISAL_ZLIB;
  state->next_in = (uint8_t *)in;
  state->avail_in = (uint32_t)in_size;
  state->next_out = (uint8_t *)out;
  state->avail_out = (uint32_t)out_size;
  int status = isal_inflate_stateless(state);
  long long written = state->total_out;
  free(state);
  return status == ISAL_DECOMP_OK ? written : -1;
}

// glibc's malloc tuning (mallopt), which Swift's Glibc module does not export.
#pragma once
#include <malloc.h>

/// Keeps blocks up to `bytes` in the heap instead of mapping each afresh, and freed memory up to
/// `trim` bytes at the heap's top instead of returning it to the system. Returns 1 on success.
static inline int tessera_keep_heap(int bytes, int trim) {
  return mallopt(M_MMAP_THRESHOLD, bytes) && mallopt(M_TRIM_THRESHOLD, trim);
}

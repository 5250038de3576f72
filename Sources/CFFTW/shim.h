#ifndef CFFTW_SHIM_H
#define CFFTW_SHIM_H
// Do not include <complex.h> first: fftwf_complex must stay float[2] (imported as a tuple).
#include <fftw3.h>
#endif

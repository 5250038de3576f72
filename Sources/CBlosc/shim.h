#ifndef CBlosc_SHIM_H
#define CBlosc_SHIM_H
#include <blosc.h>
#endif

import TesseraCore

// Resampling kernels, blend weights, the fusion plan and the chunk executor live here.
// They consume views through a read protocol and produce chunks through a write protocol, so
// this module never imports a file format.

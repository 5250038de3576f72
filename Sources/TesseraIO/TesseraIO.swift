import TesseraCore

/// Versions of the C libraries this build links, for `tessera --version` and provenance.
public enum LinkedLibraries {
  /// "hdf5 1.10.8, zstd 1.5.4, blosc 1.21.3, zlib 1.2.13, libdeflate 1.14, isa-l 2.30.0"
  public static var summary: String {
    "hdf5 \(HDF5Library.version), zstd \(CodecLibraries.zstdVersion), "
      + "blosc \(CodecLibraries.bloscVersion), zlib \(CodecLibraries.zlibVersion), "
      + "libdeflate \(CodecLibraries.libdeflateVersion), isa-l \(CodecLibraries.isalVersion)"
  }
}

/// Foundation also declares an `AffineTransform` (2-D graphics); inside Tessera the name means ours.
typealias AffineTransform = TesseraCore.AffineTransform

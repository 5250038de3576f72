import CBlosc
import CDeflate
import CIsal
import CZlib
import CZstd
import TesseraCore

/// A bytes-to-bytes compressor (the last stage of a Zarr codec pipeline, and HDF5's deflate).
///
/// Codecs are immutable values, safe to use from many threads at once; each call works on its own
/// state and holds no global lock.
public protocol BytesCodec: Sendable {
  /// Compresses `bytes`.
  func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8]
  /// Decompresses `bytes` into `output`, whose size is the decoded size.
  func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
}

extension BytesCodec {
  /// Decompresses `bytes`, whose decoded size must be `decodedSize`.
  public func decode(_ bytes: UnsafeRawBufferPointer, decodedSize: Int) throws -> [UInt8] {
    try [UInt8].written(capacity: decodedSize) { out in
      try decode(bytes, into: out)
      return decodedSize
    }
  }

  /// Compresses an array of bytes.
  public func encode(_ bytes: [UInt8]) throws -> [UInt8] {
    try bytes.withUnsafeBytes { b in try encode(b) }
  }

  /// Decompresses an array of bytes.
  public func decode(_ bytes: [UInt8], decodedSize: Int) throws -> [UInt8] {
    try bytes.withUnsafeBytes { b in try decode(b, decodedSize: decodedSize) }
  }
}

extension [UInt8] {
  /// Bytes written by `body` into uninitialised memory of `capacity` bytes (no zeroing of a buffer
  /// that is about to be overwritten); `body` returns how many it wrote.
  static func written(capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> [UInt8] {
    try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
      count = 0
      count = try body(UnsafeMutableRawBufferPointer(buffer))
      precondition(count <= capacity)
    }
  }
}

/// A compression or decompression failure.
public struct CodecError: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
  public var kind: FailureKind { .data }
  /// The codec's name (`"zstd"`, `"blosc"`, `"gzip"`, `"zlib"`).
  public var codec: String
  /// What went wrong.
  public var message: String

  public init(codec: String, message: String) {
    self.codec = codec
    self.message = message
  }

  public var description: String { "\(codec): \(message)" }
}

/// Zstandard (`ZSTD_compress`, `ZSTD_decompress`). One frame per call, with the content size in
/// the frame header, as zarr-python and numcodecs write it.
public struct ZstdCodec: BytesCodec, Hashable {
  /// Compression level (1 fastest … 22; negative levels are faster still).
  public var level: Int

  public init(level: Int = 1) { self.level = level }

  public func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
    try [UInt8].written(capacity: ZSTD_compressBound(bytes.count)) { out in
      let n = ZSTD_compress(out.baseAddress, out.count, bytes.baseAddress, bytes.count, Int32(level))
      guard ZSTD_isError(n) == 0 else {
        throw CodecError(codec: "zstd", message: String(cString: ZSTD_getErrorName(n)))
      }
      return n
    }
  }

  public func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
    let n = ZSTD_decompress(output.baseAddress, output.count, bytes.baseAddress, bytes.count)
    guard ZSTD_isError(n) == 0 else {
      throw CodecError(codec: "zstd", message: String(cString: ZSTD_getErrorName(n)))
    }
    guard n == output.count else {
      throw CodecError(codec: "zstd", message: "decoded \(n) bytes, expected \(output.count)")
    }
  }
}

/// Blosc 1 (`blosc_compress_ctx`, `blosc_decompress_ctx`: the context API, thread-safe, no global
/// state), with an inner compressor and byte or bit shuffle.
public struct BloscCodec: BytesCodec, Hashable {
  /// The shuffle applied before compression.
  public enum Shuffle: Int32, Sendable, Hashable {
    case none = 0
    case byte = 1
    case bit = 2
  }

  /// Inner compressor name: `"lz4"`, `"lz4hc"`, `"zstd"`, `"zlib"`, `"blosclz"`.
  public var compressor: String
  /// Compression level 0–9.
  public var level: Int
  public var shuffle: Shuffle
  /// Element size in bytes, for the shuffle.
  public var typeSize: Int
  /// Block size in bytes, 0 for automatic.
  public var blockSize: Int

  public init(
    compressor: String = "lz4", level: Int = 5, shuffle: Shuffle = .byte, typeSize: Int = 1, blockSize: Int = 0
  ) {
    self.compressor = compressor
    self.level = level
    self.shuffle = shuffle
    self.typeSize = typeSize
    self.blockSize = blockSize
  }

  public func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
    try [UInt8].written(capacity: bytes.count + Int(BLOSC_MAX_OVERHEAD)) { out in
      let n = blosc_compress_ctx(
        Int32(level), shuffle.rawValue, typeSize, bytes.count, bytes.baseAddress, out.baseAddress, out.count,
        compressor, blockSize, 1)
      guard n > 0 else {
        throw CodecError(codec: "blosc", message: "compression failed (unknown compressor \"\(compressor)\"?)")
      }
      return Int(n)
    }
  }

  public func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
    let decodedSize = output.count
    guard bytes.count >= Int(BLOSC_MIN_HEADER_LENGTH) else {
      throw CodecError(codec: "blosc", message: "buffer of \(bytes.count) bytes is too short for a blosc header")
    }
    var nbytes = 0
    var cbytes = 0
    var block = 0
    blosc_cbuffer_sizes(bytes.baseAddress, &nbytes, &cbytes, &block)
    guard nbytes == decodedSize, cbytes <= bytes.count else {
      throw CodecError(codec: "blosc", message: "header says \(nbytes) bytes, expected \(decodedSize)")
    }
    let n = blosc_decompress_ctx(bytes.baseAddress, output.baseAddress, output.count, 1)
    guard n == decodedSize else {
      throw CodecError(codec: "blosc", message: "decompression failed (corrupt data?)")
    }
  }
}

/// DEFLATE in a zlib (RFC 1950) or gzip (RFC 1952) container. HDF5's deflate filter and Zarr v2's
/// `zlib` use the zlib container; Zarr's `gzip` uses gzip. Decoding accepts either.
public struct DeflateCodec: BytesCodec, Hashable {
  public enum Container: Sendable, Hashable {
    case zlib, gzip
  }

  /// Compression level 0–9.
  public var level: Int
  public var container: Container

  public init(level: Int = 1, container: Container = .gzip) {
    self.level = level
    self.container = container
  }

  private var name: String { container == .gzip ? "gzip" : "zlib" }

  public func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
    var stream = z_stream()
    let windowBits: Int32 = container == .gzip ? 15 + 16 : 15
    guard
      deflateInit2_(
        &stream, Int32(level), Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
        Int32(MemoryLayout<z_stream>.size)) == Z_OK
    else { throw CodecError(codec: name, message: "deflateInit2 failed (level \(level))") }
    defer { deflateEnd(&stream) }
    return try [UInt8].written(capacity: Int(deflateBound(&stream, uLong(bytes.count))) + 32) { o in
      stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
      stream.avail_in = uInt(bytes.count)
      stream.next_out = o.baseAddress?.assumingMemoryBound(to: Bytef.self)
      stream.avail_out = uInt(o.count)
      let status = deflate(&stream, Z_FINISH)
      guard status == Z_STREAM_END else { throw CodecError(codec: name, message: "deflate failed (\(status))") }
      return Int(stream.total_out)
    }
  }

  public func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
    let n = try Self.inflate(bytes, into: output, codec: name)
    guard n == output.count else {
      throw CodecError(codec: name, message: "decoded \(n) bytes, expected \(output.count)")
    }
  }

  /// Inflates a zlib or gzip stream into `output` (the container is told by the gzip magic, as
  /// zlib's automatic header detection does); returns the number of bytes written.
  ///
  /// A zlib stream goes to ISA-L or libdeflate, whichever this process found faster
  /// (``Inflater``), a gzip stream to libdeflate: 1.6–2× zlib's speed on 16-bit microscope chunks
  /// (README, "Reading speed"), and like zlib both check the trailer (adler32 for zlib, crc32 and
  /// size for gzip). A stream they refuse goes to zlib, which decodes whatever they do not and words
  /// the error for what nobody decodes (corrupt, truncated, too large, preset dictionary).
  static func inflate(
    _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, codec: String = "deflate"
  ) throws -> Int {
    if input.count >= 2 && input[0] == 0x1F && input[1] == 0x8B {
      if let n = inflateWithLibdeflate(input, into: output) { return n }
      return try inflateWithZlib(input, into: output, codec: codec)
    }
    return try Inflater.inflateZlib(input, into: output, codec: codec)
  }

  /// libdeflate's whole-buffer decoder, or nil if it refuses the stream. A decompressor per call:
  /// libdeflate's are not to be shared between threads, and allocating one costs ~0.2 µs, under
  /// 1 % of inflating even a 4×32×32 uint16 chunk.
  static func inflateWithLibdeflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
    -> Int?
  {
    guard input.count >= 2, output.count > 0, let decompressor = libdeflate_alloc_decompressor() else { return nil }
    defer { libdeflate_free_decompressor(decompressor) }
    var written = 0
    let result =
      input[0] == 0x1F && input[1] == 0x8B
      ? libdeflate_gzip_decompress(
        decompressor, input.baseAddress, input.count, output.baseAddress, output.count, &written)
      : libdeflate_zlib_decompress(
        decompressor, input.baseAddress, input.count, output.baseAddress, output.count, &written)
    return result == LIBDEFLATE_SUCCESS ? written : nil
  }

  /// zlib's streaming decoder (`inflate` with `Z_FINISH`), zlib or gzip container.
  static func inflateWithZlib(
    _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, codec: String = "deflate"
  ) throws -> Int {
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw CodecError(codec: codec, message: "inflateInit2 failed")
    }
    defer { inflateEnd(&stream) }
    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
    stream.avail_in = uInt(input.count)
    stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
    stream.avail_out = uInt(output.count)
    let status = CZlib.inflate(&stream, Z_FINISH)
    guard status == Z_STREAM_END else {
      let detail = stream.msg.map { String(cString: $0) }
      let message: String
      switch status {
      case Z_NEED_DICT:
        message = "the stream needs a preset dictionary (not supported)"
      case Z_BUF_ERROR where stream.avail_in == 0 && stream.avail_out > 0:
        message = "truncated stream (the input ends after \(stream.total_out) decoded bytes)"
      case Z_BUF_ERROR where stream.avail_in == 0:
        message = "truncated stream, or decoded data larger than the \(output.count) bytes expected"
      case Z_BUF_ERROR:
        message = "decoded data larger than the \(output.count) bytes expected"
      case Z_DATA_ERROR where detail == "incorrect data check":
        message = "corrupt stream: the checksum (adler32 or crc32) does not match the decoded data"
      default:
        message = "corrupt stream (\(detail ?? "zlib status \(status)"))"
      }
      throw CodecError(codec: codec, message: message)
    }
    return Int(stream.total_out)
  }
}

/// Versions of the linked compression libraries.
public enum CodecLibraries {
  public static var zstdVersion: String { String(cString: ZSTD_versionString()) }
  public static var bloscVersion: String { BLOSC_VERSION_STRING }
  public static var zlibVersion: String { String(cString: CZlib.zlibVersion()) }
  /// The libdeflate headers this build was compiled against (the library has no runtime version call).
  public static var libdeflateVersion: String { LIBDEFLATE_VERSION_STRING }
  /// The ISA-L headers this build was compiled against (likewise).
  public static var isalVersion: String { "\(ISAL_MAJOR_VERSION).\(ISAL_MINOR_VERSION).\(ISAL_PATCH_VERSION)" }
}

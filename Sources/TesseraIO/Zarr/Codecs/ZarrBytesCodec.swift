import TesseraCore

/// Zarr v3's `bytes` codec (array→bytes): the chunk's elements in C order, little- or big-endian.
/// Tessera writes little-endian (the host's order: no conversion, no copy) and reads both.
public struct ZarrBytesCodec: ZarrArrayToBytesCodec, Hashable {
  /// Bytes per element (1 has no byte order).
  public var elementSize: Int
  public var bigEndian: Bool

  public init(elementSize: Int, bigEndian: Bool = false) {
    self.elementSize = elementSize
    self.bigEndian = bigEndian && elementSize > 1
  }

  init(v3 configuration: [String: Any], context: ZarrCodecRegistry.Context) throws {
    let endian = configuration["endian"] as? String
    guard endian == nil || endian == "little" || endian == "big" else {
      throw ZarrError(path: context.path, "bytes codec: unknown endian \"\(endian!)\" (little or big)")
    }
    self.init(elementSize: context.dataType.byteCount, bigEndian: endian == "big")
  }

  public func v3JSON() -> [String: Any] {
    elementSize == 1 ? ["name": "bytes"] : ["name": "bytes", "configuration": ["endian": bigEndian ? "big" : "little"]]
  }

  public var isElementBytes: Bool { true }

  public func encode(
    _ chunk: UnsafeRawBufferPointer, spec: ZarrChunkSpec, then next: (UnsafeRawBufferPointer) throws -> [UInt8]
  ) throws -> [UInt8] {
    guard bigEndian else { return try next(chunk) }
    var swapped = Array(chunk)
    swapped.withUnsafeMutableBytes { Self.swapBytes($0, elementSize) }
    return try swapped.withUnsafeBytes { try next($0) }
  }

  public func decode(_ bytes: UnsafeRawBufferPointer, spec: ZarrChunkSpec, into chunk: UnsafeMutableRawBufferPointer)
    throws
  {
    guard bytes.count == chunk.count else {
      throw CodecError(codec: "bytes", message: "chunk holds \(bytes.count) bytes, expected \(chunk.count)")
    }
    chunk.copyMemory(from: bytes)
    reorder(chunk)
  }

  public func reorder(_ chunk: UnsafeMutableRawBufferPointer) {
    if bigEndian { Self.swapBytes(chunk, elementSize) }
  }

  /// Reverses the bytes of every `size`-byte element of `bytes` in place.
  static func swapBytes(_ bytes: UnsafeMutableRawBufferPointer, _ size: Int) {
    guard size > 1 else { return }
    for start in stride(from: 0, to: bytes.count - size + 1, by: size) {
      for k in 0..<(size / 2) { bytes.swapAt(start + k, start + size - 1 - k) }
    }
  }
}

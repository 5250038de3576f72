import TesseraCore

/// Zarr v3's `crc32c` codec (bytes→bytes): appends the CRC-32C of the bytes, little-endian; on
/// reading, checks and strips it.
public struct ZarrCRC32CCodec: ZarrBytesToBytesCodec, Hashable {
  public init() {}

  init(v3 configuration: [String: Any], context: ZarrCodecRegistry.Context) throws { self.init() }

  public func v3JSON() -> [String: Any] { ["name": "crc32c"] }
  public func v2JSON() -> [String: Any]? { nil }

  public func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
    var out = Array(bytes)
    withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { out += $0 }
    return out
  }

  public func payload(of bytes: UnsafeRawBufferPointer) throws -> Range<Int>? {
    guard bytes.count >= 4 else { throw CodecError(codec: "crc32c", message: "chunk too short for its checksum") }
    let body = 0..<(bytes.count - 4)
    let stored = bytes.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self).littleEndian
    guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[body])) == stored else {
      throw CodecError(codec: "crc32c", message: "checksum mismatch: corrupt chunk")
    }
    return body
  }

  public func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
    let body = try payload(of: bytes)!
    guard body.count == output.count else {
      throw CodecError(codec: "crc32c", message: "chunk holds \(body.count) bytes, expected \(output.count)")
    }
    output.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[body]))
  }
}

/// CRC-32C (Castagnoli), as the Zarr v3 `crc32c` codec and the sharding index use it.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    table.withUnsafeBufferPointer { t in
      for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }
    return c ^ 0xFFFF_FFFF
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}

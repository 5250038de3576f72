import TesseraCore

/// Zstandard (``ZstdCodec``) as a Zarr bytes→bytes codec: v3 `zstd` and v2 `zstd`.
extension ZstdCodec: ZarrBytesToBytesCodec {
  init(v3 c: [String: Any], context: ZarrCodecRegistry.Context) throws { self.init(level: c.int("level", 0)) }
  init(v2 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    self.init(level: (c["level"] as? Int) ?? c.int("clevel", 1))
  }

  public func v3JSON() -> [String: Any] {
    ["name": "zstd", "configuration": ["level": level, "checksum": false] as [String: Any]]
  }
  public func v2JSON() -> [String: Any]? { ["id": "zstd", "level": level] }
  public func payload(of bytes: UnsafeRawBufferPointer) throws -> Range<Int>? { nil }
}

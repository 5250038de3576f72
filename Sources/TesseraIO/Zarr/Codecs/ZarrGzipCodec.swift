import TesseraCore

/// DEFLATE (``DeflateCodec``) as a Zarr bytes→bytes codec: v3 `gzip`; v2 `gzip` and `zlib` (the
/// zlib container exists in Zarr v2 only).
extension DeflateCodec: ZarrBytesToBytesCodec {
  init(v3 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    self.init(level: c.int("level", 5), container: .gzip)
  }
  init(v2 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    self.init(
      level: (c["level"] as? Int) ?? c.int("clevel", 1), container: c["id"] as? String == "zlib" ? .zlib : .gzip)
  }

  public func v3JSON() -> [String: Any] { ["name": "gzip", "configuration": ["level": level]] }
  public func v2JSON() -> [String: Any]? { ["id": container == .gzip ? "gzip" : "zlib", "level": level] }
  public func payload(of bytes: UnsafeRawBufferPointer) throws -> Range<Int>? { nil }
}

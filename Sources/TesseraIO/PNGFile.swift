import CPNG
import Foundation
import TesseraCore

/// A PNG picture: grey or RGB, 8 or 16 bits per sample, written by libpng (through the `CPNG`
/// shim, which turns libpng's longjmp errors into a status and a message).
public struct PNGImage: Sendable {
  public let width: Int
  public let height: Int
  /// Samples per pixel: 1 (grey) or 3 (RGB).
  public let channels: Int
  /// 8 or 16.
  public let bitDepth: Int
  /// Rows one after another, `channels` samples per pixel (8-bit pictures).
  public var samples8: [UInt8]
  /// The same for 16-bit pictures.
  public var samples16: [UInt16]

  /// A black picture.
  public init(width: Int, height: Int, channels: Int, bitDepth: Int = 8) {
    precondition(width > 0 && height > 0 && (channels == 1 || channels == 3) && (bitDepth == 8 || bitDepth == 16))
    self.width = width
    self.height = height
    self.channels = channels
    self.bitDepth = bitDepth
    let count = width * height * channels
    samples8 = bitDepth == 8 ? [UInt8](repeating: 0, count: count) : []
    samples16 = bitDepth == 16 ? [UInt16](repeating: 0, count: count) : []
  }

  /// Writes the picture to `path`, whole or not at all (a temporary file beside it, then a
  /// rename).
  ///
  /// - Throws: ``ZarrError`` (I/O) naming the file and libpng's or the system's reason.
  public func write(to path: String) throws {
    let parent = (path as NSString).deletingLastPathComponent
    if !parent.isEmpty { try ZarrStore.makeDirectory(parent) }
    let name = (path as NSString).lastPathComponent
    let tmp = (parent.isEmpty ? "." : parent) + "/.\(name).\(getpid()).tmp"
    var message = [CChar](repeating: 0, count: 256)
    let status: Int32 =
      bitDepth == 8
      ? samples8.withUnsafeBytes {
        tessera_png_write(tmp, Int32(width), Int32(height), Int32(channels), 8, $0.baseAddress, &message, 256)
      }
      : samples16.withUnsafeBytes {
        tessera_png_write(tmp, Int32(width), Int32(height), Int32(channels), 16, $0.baseAddress, &message, 256)
      }
    guard status == 0 else {
      unlink(tmp)
      throw ZarrError(path: path, "cannot write the PNG (\(String(cString: message)))", kind: .io)
    }
    guard rename(tmp, path) == 0 else {
      let reason = String(cString: strerror(errno))
      unlink(tmp)
      throw ZarrError(path: path, "cannot write the PNG (\(reason))", kind: .io)
    }
  }

  /// The libpng version linked.
  public static var libraryVersion: String { String(cString: tessera_png_version()) }
}

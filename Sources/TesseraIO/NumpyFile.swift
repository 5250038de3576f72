import Foundation
import TesseraCore

/// Writes `.npy` files (NumPy format 1.0, C order, little-endian), so a region of any view can be
/// handed to Python exactly.
public enum NumpyFile {
  /// The bytes of a `.npy` file holding `buffer`.
  public static func encode(_ buffer: AnyVolumeBuffer) -> Data {
    let shape = buffer.box.shape
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(buffer.elementType.numpyTypeString)', 'fortran_order': False, 'shape': \(shapeText), }"
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let length = UInt16(header.utf8.count)
    data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
    data.append(contentsOf: Array(header.utf8))
    buffer.withUnsafeBytes { data.append(contentsOf: $0) }
    return data
  }

  /// Writes `buffer` to `path` atomically.
  public static func write(_ buffer: AnyVolumeBuffer, to path: String) throws {
    try AtomicFile.write(encode(buffer), to: path)
  }
}

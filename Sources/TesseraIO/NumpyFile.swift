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

extension NumpyFile {
  /// Reads a `.npy` file (format 1.x/2.x, C order, little-endian or 1-byte types).
  ///
  /// - Throws: ``DatasetError`` for a missing file, a bad header, Fortran order, big-endian or
  ///   unsupported types.
  public static func read(_ path: String) throws -> AnyVolumeBuffer {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw DatasetError(path: path, "no such file or not readable")
    }
    let bytes = [UInt8](data)
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
      throw DatasetError(path: path, "not a .npy file (bad magic)")
    }
    let major = bytes[6]
    let headerLength: Int
    let start: Int
    if major == 1 {
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
      start = 10
    } else {
      guard bytes.count >= 12 else { throw DatasetError(path: path, "truncated .npy header") }
      headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
      start = 12
    }
    guard bytes.count >= start + headerLength else { throw DatasetError(path: path, "truncated .npy header") }
    let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
    func field(_ key: String) -> String? {
      guard let r = header.range(of: "'\(key)':") else { return nil }
      return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    guard let descrField = field("descr"), let quote = descrField.dropFirst().firstIndex(of: "'") else {
      throw DatasetError(path: path, "no descr in the .npy header")
    }
    let descr = String(descrField[descrField.index(after: descrField.startIndex)..<quote])
    guard let type = ElementType(numpyTypeString: descr) else {
      throw DatasetError(path: path, "unsupported dtype \(descr); Tessera reads little-endian u1/i1/u2/i2/u4/i4/f4/f8")
    }
    guard field("fortran_order")?.hasPrefix("False") ?? false else {
      throw DatasetError(path: path, "Fortran-order arrays are not supported; save with np.ascontiguousarray")
    }
    guard let shapeField = field("shape"), let open = shapeField.firstIndex(of: "("),
      let close = shapeField.firstIndex(of: ")")
    else { throw DatasetError(path: path, "no shape in the .npy header") }
    let shape = shapeField[shapeField.index(after: open)..<close].split(separator: ",").compactMap {
      Int($0.trimmingCharacters(in: .whitespaces))
    }
    let box = Box(shape: shape)
    let payload = start + headerLength
    guard bytes.count - payload == box.volume * type.byteCount else {
      throw DatasetError(
        path: path, "holds \(bytes.count - payload) data bytes, expected \(box.volume * type.byteCount)")
    }
    var out = AnyVolumeBuffer(elementType: type, box: box)
    out.withUnsafeMutableBytes { dst in
      bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[payload...])) }
    }
    return out
  }
}

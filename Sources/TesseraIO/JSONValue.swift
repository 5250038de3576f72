import Foundation

/// A JSON document read with `JSONDecoder`, whose numbers are correctly rounded: Foundation's
/// `JSONSerialization` on Linux (Swift 6.3) reads some doubles one or a few ulps off
/// (−1.7981128601246246 as −1.7981128601246243), so files whose numbers must read back exactly
/// (the plan an output stores) go through this instead.
enum JSONValue: Decodable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
    } else if let b = try? c.decode(Bool.self) {
      self = .bool(b)
    } else if let i = try? c.decode(Int.self) {
      self = .int(i)
    } else if let d = try? c.decode(Double.self) {
      self = .double(d)
    } else if let s = try? c.decode(String.self) {
      self = .string(s)
    } else if let a = try? c.decode([JSONValue].self) {
      self = .array(a)
    } else {
      self = .object(try c.decode([String: JSONValue].self))
    }
  }

  /// The value as `JSONSerialization` objects (NSNumber-bridged numbers, arrays, dictionaries).
  var any: Any {
    switch self {
    case .null: NSNull()
    case .bool(let b): b
    case .int(let i): i
    case .double(let d): d
    case .string(let s): s
    case .array(let a): a.map(\.any)
    case .object(let o): o.mapValues(\.any)
    }
  }

  /// The JSON object in `bytes` (read from `path`), numbers exact.
  static func object(_ bytes: [UInt8], path: String) throws -> [String: Any] {
    guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)), case .object = value,
      let object = value.any as? [String: Any]
    else { throw ZarrError(path: path, "not a JSON object") }
    return object
  }
}

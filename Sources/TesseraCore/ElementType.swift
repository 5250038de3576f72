/// The voxel element types Tessera reads, computes in and writes.
///
/// The raw value is the NumPy/Zarr v3 data-type name (`"uint16"`).
public enum ElementType: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
  case uint8, int8, uint16, int16, uint32, int32, float32, float64

  /// Size of one element in bytes.
  public var byteCount: Int {
    switch self {
    case .uint8, .int8: 1
    case .uint16, .int16: 2
    case .uint32, .int32, .float32: 4
    case .float64: 8
    }
  }

  /// True for the IEEE floating-point types.
  public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

  /// True for the signed integer types.
  public var isSignedInteger: Bool { self == .int8 || self == .int16 || self == .int32 }

  /// The little-endian NumPy type string used by Zarr v2 (`"<u2"`, `"|u1"`, `"<f4"`).
  public var numpyTypeString: String {
    switch self {
    case .uint8: "|u1"
    case .int8: "|i1"
    case .uint16: "<u2"
    case .int16: "<i2"
    case .uint32: "<u4"
    case .int32: "<i4"
    case .float32: "<f4"
    case .float64: "<f8"
    }
  }

  /// Parses a NumPy type string (`"<u2"`, `"|u1"`, `"uint16"`); big-endian types are not accepted.
  public init?(numpyTypeString s: String) {
    if let t = ElementType(rawValue: s) {
      self = t
      return
    }
    guard let t = ElementType.allCases.first(where: { $0.numpyTypeString == s }) else { return nil }
    // "<u1" and "|u1" both name uint8.
    self = t
  }

  /// The smallest and largest representable values (for floats: the finite extremes).
  public var range: ClosedRange<Double> {
    switch self {
    case .uint8: 0...255
    case .int8: -128...127
    case .uint16: 0...65535
    case .int16: -32768...32767
    case .uint32: 0...4_294_967_295
    case .int32: -2_147_483_648...2_147_483_647
    case .float32: -Double(Float.greatestFiniteMagnitude)...Double(Float.greatestFiniteMagnitude)
    case .float64: -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude
    }
  }

  public var description: String { rawValue }
}

/// A type that can be a voxel: a fixed-size number with conversion rules to and from floating
/// point.
///
/// Conversion into an integer type rounds to the nearest integer (halves away from zero), clamps
/// to the type's range, and maps NaN to 0. Conversion into a floating type is the nearest
/// representable value. These rules are what fusion uses when it writes its float results into
/// the output type (`--dtype`).
public protocol VoxelElement: BitwiseCopyable, Sendable, Equatable, Comparable {
  /// The runtime tag of this type.
  static var elementType: ElementType { get }
  /// The type's zero.
  static var zero: Self { get }
  /// Rounds, clamps and converts a `Float` (NaN becomes 0 for integer types).
  init(clamping value: Float)
  /// Rounds, clamps and converts a `Double` (NaN becomes 0 for integer types).
  init(clamping value: Double)
  /// The value as `Float` (exact for 8- and 16-bit integers).
  var floatValue: Float { get }
  /// The value as `Double` (exact for every supported type).
  var doubleValue: Double { get }
}

extension VoxelElement where Self: BinaryInteger & FixedWidthInteger {
  // Rounding is done by truncation plus a correction on the exact fractional part, not with
  // `rounded()`: baseline x86-64 has no SSE4.1 `roundps`, so `rounded()` becomes a libm call per
  // voxel, while truncating conversions and compares vectorise.

  @inlinable @inline(__always)
  public init(clamping value: Float) {
    // Every supported integer type of 16 bits or less is exactly representable in Float; wider
    // types go through Double.
    if Self.bitWidth > 16 {
      self.init(clamping: Double(value))
      return
    }
    // Branch-free, so conversion loops vectorise: clamp (NaN → 0); round |v| to the nearest
    // integer with the 1.5·2²³ trick (ties to even, exact for |v| < 2²²) and move exact halves
    // up, which is rounding half away from zero; read the integer out of the mantissa of
    // (r + 65536 + 2²³) instead of a trapping Float → Int conversion.
    let lo = Float(Self.min)
    let hi = Float(Self.max)
    var v = value.isNaN ? 0 : value
    v = v < lo ? lo : v
    v = v > hi ? hi : v
    let a = v < 0 ? -v : v
    var r = (a + 12_582_912) - 12_582_912
    r = a - r == 0.5 ? r + 1 : r
    let s = v < 0 ? -r : r
    let bits = Int32(bitPattern: (s + 65536 + 8_388_608).bitPattern & 0x7F_FFFF) - 65536
    self = Self(truncatingIfNeeded: bits)
  }

  @inlinable @inline(__always)
  public init(clamping value: Double) {
    // Every supported integer type has at most 32 bits, so its range fits Int64 exactly.
    let lo = Double(Self.min)
    let hi = Double(Self.max)
    var v = value
    if !(v > lo) { v = v.isNaN ? 0 : lo }
    if v > hi { v = hi }
    let t = Int64(v)
    let f = v - Double(t)
    let r = t + (f >= 0.5 ? 1 : 0) - (f <= -0.5 ? 1 : 0)
    self = Self(truncatingIfNeeded: Swift.min(Swift.max(r, Int64(Self.min)), Int64(Self.max)))
  }

  @inlinable @inline(__always) public var floatValue: Float { Float(self) }
  @inlinable @inline(__always) public var doubleValue: Double { Double(self) }
  @inlinable public static var zero: Self { 0 }
}

extension UInt8: VoxelElement { public static var elementType: ElementType { .uint8 } }
extension Int8: VoxelElement { public static var elementType: ElementType { .int8 } }
extension UInt16: VoxelElement { public static var elementType: ElementType { .uint16 } }
extension Int16: VoxelElement { public static var elementType: ElementType { .int16 } }
extension UInt32: VoxelElement { public static var elementType: ElementType { .uint32 } }
extension Int32: VoxelElement { public static var elementType: ElementType { .int32 } }

extension Float: VoxelElement {
  public static var elementType: ElementType { .float32 }
  @inlinable @inline(__always) public init(clamping value: Float) { self = value }
  @inlinable @inline(__always) public init(clamping value: Double) { self = Float(value) }
  @inlinable @inline(__always) public var floatValue: Float { self }
  @inlinable @inline(__always) public var doubleValue: Double { Double(self) }
}

extension Double: VoxelElement {
  public static var elementType: ElementType { .float64 }
  @inlinable @inline(__always) public init(clamping value: Float) { self = Double(value) }
  @inlinable @inline(__always) public init(clamping value: Double) { self = value }
  @inlinable @inline(__always) public var floatValue: Float { Float(self) }
  @inlinable @inline(__always) public var doubleValue: Double { self }
}

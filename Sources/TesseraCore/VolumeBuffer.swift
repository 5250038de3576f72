/// A dense N-D array of voxels that covers a box of some index space, in C order (last axis
/// fastest).
///
/// The buffer knows *where* it is: `box` places it in the coordinates of the view, chunk grid or
/// output it was cut from, so copies between buffers are expressed in shared coordinates and
/// clipped to what both hold. A value type with copy-on-write storage.
public struct VolumeBuffer<Element: VoxelElement>: Sendable {
  /// The region of index space this buffer holds.
  public private(set) var box: Box
  /// The voxels, C order over `box`.
  public var storage: [Element]

  /// A buffer covering `box`, every voxel `value`.
  public init(box: Box, repeating value: Element = .zero) {
    self.box = box
    self.storage = [Element](repeating: value, count: box.volume)
  }

  /// A buffer covering `box` whose voxels are not initialised: for callers that overwrite every
  /// voxel before reading any (skips zeroing a buffer that is about to be filled).
  public init(uninitializedBox box: Box) {
    self.box = box
    self.storage = [Element](unsafeUninitializedCapacity: box.volume) { _, count in count = box.volume }
  }

  /// A buffer `[0, shape)`, every voxel `value`.
  public init(shape: [Int], repeating value: Element = .zero) {
    self.init(box: Box(shape: shape), repeating: value)
  }

  /// A buffer over `box` holding `storage` in C order.
  ///
  /// - Throws: ``GeometryError/rankMismatch(expected:got:what:)`` when the element count is not
  ///   the box's volume.
  public init(box: Box, storage: [Element]) throws(GeometryError) {
    guard storage.count == box.volume else {
      throw .rankMismatch(expected: box.volume, got: storage.count, what: "elements for box \(box)")
    }
    self.box = box
    self.storage = storage
  }

  /// Number of axes.
  @inlinable public var rank: Int { box.rank }
  /// Extent per axis.
  public var shape: [Int] { box.shape }
  /// Number of voxels.
  @inlinable public var count: Int { storage.count }

  /// Element strides per axis (C order).
  public var strides: [Int] { Self.strides(for: box.shape) }

  /// C-order strides of an array of `shape`.
  @inlinable public static func strides(for shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      s[d] = acc
      acc *= shape[d]
    }
    return s
  }

  /// Offset in `storage` of the voxel at `index` (in the buffer's coordinates, i.e. inside `box`).
  @inlinable public func offset(of index: [Int]) -> Int {
    precondition(box.contains(index), "index \(index) outside buffer box \(box)")
    var o = 0
    for d in 0..<rank { o = o * (box.upper[d] - box.lower[d]) + (index[d] - box.lower[d]) }
    return o
  }

  /// The voxel at `index`, in the buffer's coordinates.
  public subscript(index: [Int]) -> Element {
    get { storage[offset(of: index)] }
    set { storage[offset(of: index)] = newValue }
  }

  /// Makes the buffer cover `box` (every voxel zero), keeping its allocation when it is large
  /// enough: for buffers reused from one region to the next.
  public mutating func reuse(for box: Box) {
    storage.removeAll(keepingCapacity: true)
    storage.append(contentsOf: repeatElement(.zero, count: box.volume))
    self.box = box
  }

  /// The same voxels (shared storage) labelled with another box of the same volume.
  public func reboxed(_ box: Box) -> VolumeBuffer {
    precondition(box.volume == self.box.volume, "reboxing \(self.box) as \(box)")
    var out = self
    out.box = box
    return out
  }

  /// An empty stand-in, held while the real buffer is being mutated elsewhere.
  static var placeholder: VolumeBuffer { VolumeBuffer(box: Box(lower: [0], upper: [0]), repeating: .zero) }

  /// Moves the buffer in index space without touching its voxels.
  public mutating func move(to origin: [Int]) {
    box = Box(origin: origin, shape: box.shape)
  }

  /// Copies, with conversion, the voxels of `source` that lie in both buffers and in `region`
  /// (everything shared when `region` is nil). Voxels outside the shared region are untouched.
  /// Conversion follows ``VoxelElement``'s rules (round, clamp, NaN → 0 for integer targets).
  @inlinable
  public mutating func copy<Source: VoxelElement>(from source: VolumeBuffer<Source>, region: Box? = nil) {
    precondition(source.rank == rank, "copy between buffers of rank \(source.rank) and \(rank)")
    var shared = box.intersection(source.box)
    if let region { shared = shared.intersection(region) }
    if shared.isEmpty { return }
    let n = rank
    if n == 0 {
      storage[0] =
        Source.self == Element.self
        ? unsafeBitCast(source.storage[0], to: Element.self) : Element(clamping: source.storage[0].doubleValue)
      return
    }
    let sourceType = Source.elementType
    let targetType = Element.elementType
    let sourceBox = source.box
    let targetBox = box
    source.storage.withUnsafeBufferPointer { src in
      storage.withUnsafeMutableBufferPointer { dst in
        RawCopy.forEachRow(of: shared, in: sourceBox, and: targetBox) { so, dO, length in
          ElementConversion.convert(
            length, from: sourceType, UnsafeRawPointer(src.baseAddress! + so), to: targetType,
            UnsafeMutableRawPointer(dst.baseAddress! + dO))
        }
      }
    }
  }

  /// A new buffer holding `region` (which must lie inside this buffer's box).
  public func extracting(_ region: Box) -> VolumeBuffer<Element> {
    precondition(box.contains(region), "region \(region) outside buffer box \(box)")
    var out = VolumeBuffer(uninitializedBox: region)  // the copy writes every voxel
    out.copy(from: self)
    return out
  }

  /// The buffer converted to another element type (round, clamp, NaN → 0 for integer targets).
  public func converted<Target: VoxelElement>(to: Target.Type = Target.self) -> VolumeBuffer<Target> {
    if let same = self as? VolumeBuffer<Target> { return same }
    var out = VolumeBuffer<Target>(uninitializedBox: box)  // the copy writes every voxel
    out.copy(from: self)
    return out
  }

  /// Calls `body` with the raw bytes of the voxels (native, i.e. little-endian, order).
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try storage.withUnsafeBytes(body)
  }
}

extension VolumeBuffer: Equatable where Element: Equatable {}

/// A volume buffer whose element type is known only at run time (what a file holds).
public enum AnyVolumeBuffer: Sendable {
  case uint8(VolumeBuffer<UInt8>)
  case int8(VolumeBuffer<Int8>)
  case uint16(VolumeBuffer<UInt16>)
  case int16(VolumeBuffer<Int16>)
  case uint32(VolumeBuffer<UInt32>)
  case int32(VolumeBuffer<Int32>)
  case float32(VolumeBuffer<Float>)
  case float64(VolumeBuffer<Double>)

  /// Wraps a typed buffer.
  public init<E: VoxelElement>(_ buffer: VolumeBuffer<E>) {
    switch buffer {
    case let b as VolumeBuffer<UInt8>: self = .uint8(b)
    case let b as VolumeBuffer<Int8>: self = .int8(b)
    case let b as VolumeBuffer<UInt16>: self = .uint16(b)
    case let b as VolumeBuffer<Int16>: self = .int16(b)
    case let b as VolumeBuffer<UInt32>: self = .uint32(b)
    case let b as VolumeBuffer<Int32>: self = .int32(b)
    case let b as VolumeBuffer<Float>: self = .float32(b)
    case let b as VolumeBuffer<Double>: self = .float64(b)
    default: fatalError("unsupported voxel type \(E.self)")
    }
  }

  /// A zero-filled buffer of a run-time element type.
  public init(elementType: ElementType, box: Box) {
    switch elementType {
    case .uint8: self = .uint8(VolumeBuffer(box: box))
    case .int8: self = .int8(VolumeBuffer(box: box))
    case .uint16: self = .uint16(VolumeBuffer(box: box))
    case .int16: self = .int16(VolumeBuffer(box: box))
    case .uint32: self = .uint32(VolumeBuffer(box: box))
    case .int32: self = .int32(VolumeBuffer(box: box))
    case .float32: self = .float32(VolumeBuffer(box: box))
    case .float64: self = .float64(VolumeBuffer(box: box))
    }
  }

  public var elementType: ElementType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .float64: .float64
    }
  }

  public var box: Box {
    switch self {
    case .uint8(let b): b.box
    case .int8(let b): b.box
    case .uint16(let b): b.box
    case .int16(let b): b.box
    case .uint32(let b): b.box
    case .int32(let b): b.box
    case .float32(let b): b.box
    case .float64(let b): b.box
    }
  }

  /// The voxels converted to `Target` (no copy when the type already matches).
  public func converted<Target: VoxelElement>(to: Target.Type = Target.self) -> VolumeBuffer<Target> {
    switch self {
    case .uint8(let b): b.converted()
    case .int8(let b): b.converted()
    case .uint16(let b): b.converted()
    case .int16(let b): b.converted()
    case .uint32(let b): b.converted()
    case .int32(let b): b.converted()
    case .float32(let b): b.converted()
    case .float64(let b): b.converted()
    }
  }
}

extension AnyVolumeBuffer {
  /// Calls `body` with the voxels' bytes, mutable (in place: the storage is not copied).
  public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    // Each case takes the buffer out of `self` first, so its storage is uniquely referenced and
    // writing to it does not trigger a copy-on-write of the whole volume.
    func mutate<E>(_ b: inout VolumeBuffer<E>) throws -> R { try b.storage.withUnsafeMutableBytes(body) }
    switch self {
    case .uint8(var b):
      self = .uint8(.placeholder)
      defer { self = .uint8(b) }
      return try mutate(&b)
    case .int8(var b):
      self = .int8(.placeholder)
      defer { self = .int8(b) }
      return try mutate(&b)
    case .uint16(var b):
      self = .uint16(.placeholder)
      defer { self = .uint16(b) }
      return try mutate(&b)
    case .int16(var b):
      self = .int16(.placeholder)
      defer { self = .int16(b) }
      return try mutate(&b)
    case .uint32(var b):
      self = .uint32(.placeholder)
      defer { self = .uint32(b) }
      return try mutate(&b)
    case .int32(var b):
      self = .int32(.placeholder)
      defer { self = .int32(b) }
      return try mutate(&b)
    case .float32(var b):
      self = .float32(.placeholder)
      defer { self = .float32(b) }
      return try mutate(&b)
    case .float64(var b):
      self = .float64(.placeholder)
      defer { self = .float64(b) }
      return try mutate(&b)
    }
  }

  /// A buffer of a run-time element type whose voxels are not initialised, for callers that
  /// overwrite every voxel before reading any.
  public init(elementType: ElementType, uninitializedBox box: Box) {
    switch elementType {
    case .uint8: self = .uint8(VolumeBuffer(uninitializedBox: box))
    case .int8: self = .int8(VolumeBuffer(uninitializedBox: box))
    case .uint16: self = .uint16(VolumeBuffer(uninitializedBox: box))
    case .int16: self = .int16(VolumeBuffer(uninitializedBox: box))
    case .uint32: self = .uint32(VolumeBuffer(uninitializedBox: box))
    case .int32: self = .int32(VolumeBuffer(uninitializedBox: box))
    case .float32: self = .float32(VolumeBuffer(uninitializedBox: box))
    case .float64: self = .float64(VolumeBuffer(uninitializedBox: box))
    }
  }

  /// The same voxels (shared storage, no copy) labelled with another box of the same volume, such
  /// as the box with leading channel and time axes of extent 1 added.
  public func reboxed(_ box: Box) -> AnyVolumeBuffer {
    switch self {
    case .uint8(let b): .uint8(b.reboxed(box))
    case .int8(let b): .int8(b.reboxed(box))
    case .uint16(let b): .uint16(b.reboxed(box))
    case .int16(let b): .int16(b.reboxed(box))
    case .uint32(let b): .uint32(b.reboxed(box))
    case .int32(let b): .int32(b.reboxed(box))
    case .float32(let b): .float32(b.reboxed(box))
    case .float64(let b): .float64(b.reboxed(box))
    }
  }

  /// Calls `body` with the voxels' bytes.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch self {
    case .uint8(let b): try b.withUnsafeBytes(body)
    case .int8(let b): try b.withUnsafeBytes(body)
    case .uint16(let b): try b.withUnsafeBytes(body)
    case .int16(let b): try b.withUnsafeBytes(body)
    case .uint32(let b): try b.withUnsafeBytes(body)
    case .int32(let b): try b.withUnsafeBytes(body)
    case .float32(let b): try b.withUnsafeBytes(body)
    case .float64(let b): try b.withUnsafeBytes(body)
    }
  }

  /// The same bytes viewed as another element type of the same size (e.g. BigDataViewer's int16
  /// holding uint16). No value changes; only the label.
  public func reinterpreted(as target: ElementType) -> AnyVolumeBuffer {
    if target == elementType { return self }
    precondition(target.byteCount == elementType.byteCount, "reinterpreting \(elementType) as \(target)")
    var out = AnyVolumeBuffer(elementType: target, uninitializedBox: box)
    withUnsafeBytes { src in out.withUnsafeMutableBytes { $0.copyMemory(from: src) } }
    return out
  }
}

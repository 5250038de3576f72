/// A volume buffer whose element type is known only at run time (what a file holds).
///
/// Code generic over the element type reaches the typed ``VolumeBuffer`` through
/// ``withMutableBuffer(_:)`` (or ``withBuffer(_:)`` to read), which hands it to a
/// ``VolumeBufferBody``; the operations below are written that way.
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
  @inlinable
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

  /// Runs `body` on the typed buffer, in place: what it changes is changed in `self`, and the
  /// storage is not copied for it.
  @inlinable
  public mutating func withMutableBuffer<B: VolumeBufferBody>(_ body: B) throws(B.Failure) -> B.Result {
    switch self {
    case .uint8(var b): return try withTaken(&b, body)
    case .int8(var b): return try withTaken(&b, body)
    case .uint16(var b): return try withTaken(&b, body)
    case .int16(var b): return try withTaken(&b, body)
    case .uint32(var b): return try withTaken(&b, body)
    case .int32(var b): return try withTaken(&b, body)
    case .float32(var b): return try withTaken(&b, body)
    case .float64(var b): return try withTaken(&b, body)
    }
  }

  /// Runs `body` on `buffer`, a copy of this enum's payload, and stores it back. `self` holds a
  /// placeholder meanwhile, so `buffer`'s storage is uniquely referenced and writing to it does
  /// not trigger a copy-on-write of the whole volume.
  @inlinable
  mutating func withTaken<T: VoxelElement, B: VolumeBufferBody>(
    _ buffer: inout VolumeBuffer<T>, _ body: B
  ) throws(B.Failure) -> B.Result {
    self = .uint8(.placeholder)
    defer { self = AnyVolumeBuffer(buffer) }
    return try body.run(&buffer)
  }

  /// Runs `body` on the typed buffer to read it. The body must not change the buffer: it runs on
  /// a copy, which a change would copy in full and then drop.
  @inlinable
  public func withBuffer<B: VolumeBufferBody>(_ body: B) throws(B.Failure) -> B.Result {
    var copy = self
    return try copy.withMutableBuffer(body)
  }
}

/// Code generic over the voxel type, run on the typed buffer of an ``AnyVolumeBuffer`` by
/// ``AnyVolumeBuffer/withMutableBuffer(_:)`` and ``AnyVolumeBuffer/withBuffer(_:)``: the
/// buffer's counterpart of ``ElementTypeBody``, specialised for each type in the same way (the
/// accessors are inlinable; read the properties a loop uses into locals first, as there).
public protocol VolumeBufferBody {
  /// What the body returns.
  associatedtype Result
  /// What the body throws (`Never`: it does not).
  associatedtype Failure: Error = Never
  /// The body, for the buffer of concrete voxel type `T`.
  func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) throws(Failure) -> Result
}

extension AnyVolumeBuffer {
  /// A zero-filled buffer of a run-time element type.
  public init(elementType: ElementType, box: Box) {
    self = elementType.dispatch(Allocation(box: box, zeroed: true))
  }

  /// A buffer of a run-time element type whose voxels are not initialised, for callers that
  /// overwrite every voxel before reading any.
  public init(elementType: ElementType, uninitializedBox box: Box) {
    self = elementType.dispatch(Allocation(box: box, zeroed: false))
  }

  private struct Allocation: ElementTypeBody {
    let box: Box
    let zeroed: Bool
    func run<T: VoxelElement>(_: T.Type) -> AnyVolumeBuffer {
      AnyVolumeBuffer(zeroed ? VolumeBuffer<T>(box: box) : VolumeBuffer<T>(uninitializedBox: box))
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

  public var box: Box { withBuffer(BoxOf()) }

  private struct BoxOf: VolumeBufferBody {
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) -> Box { buffer.box }
  }

  /// The voxels converted to `Target` (no copy when the type already matches).
  public func converted<Target: VoxelElement>(to: Target.Type = Target.self) -> VolumeBuffer<Target> {
    withBuffer(Conversion<Target>())
  }

  private struct Conversion<Target: VoxelElement>: VolumeBufferBody {
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) -> VolumeBuffer<Target> { buffer.converted() }
  }

  /// The same voxels (shared storage, no copy) labelled with another box of the same volume, such
  /// as the box with leading channel and time axes of extent 1 added.
  public func reboxed(_ box: Box) -> AnyVolumeBuffer {
    withBuffer(Reboxing(box: box))
  }

  private struct Reboxing: VolumeBufferBody {
    let box: Box
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) -> AnyVolumeBuffer {
      AnyVolumeBuffer(buffer.reboxed(box))
    }
  }

  /// Calls `body` with the voxels' bytes.
  public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try withoutActuallyEscaping(body) { (body) throws(E) in try withBuffer(Bytes(body: body)) }
  }

  private struct Bytes<R, E: Error>: VolumeBufferBody {
    let body: (UnsafeRawBufferPointer) throws(E) -> R
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) throws(E) -> R {
      try buffer.storage.withUnsafeBufferPointer { (voxels) throws(E) in try body(UnsafeRawBufferPointer(voxels)) }
    }
  }

  /// Calls `body` with the voxels' bytes, mutable (in place: the storage is not copied).
  public mutating func withUnsafeMutableBytes<R, E: Error>(
    _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
  ) throws(E) -> R {
    try withoutActuallyEscaping(body) { (body) throws(E) in try withMutableBuffer(MutableBytes(body: body)) }
  }

  private struct MutableBytes<R, E: Error>: VolumeBufferBody {
    let body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) throws(E) -> R {
      try buffer.storage.withUnsafeMutableBufferPointer { (voxels) throws(E) in
        try body(UnsafeMutableRawBufferPointer(voxels))
      }
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

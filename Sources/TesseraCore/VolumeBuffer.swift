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

  /// An empty stand-in, held while the real buffer is being mutated elsewhere (its box is shared
  /// and its storage empty, so making one allocates nothing).
  @usableFromInline static var placeholder: VolumeBuffer { VolumeBuffer(box: placeholderBox, repeating: .zero) }

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

/// The box of every ``VolumeBuffer/placeholder``.
private let placeholderBox = Box(lower: [0], upper: [0])

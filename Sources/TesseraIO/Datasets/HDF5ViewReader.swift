import TesseraCore

/// Reads a view stored as HDF5 datasets, one per resolution level, through
/// ``HDF5Dataset/readBlock(_:as:parallel:)`` (whole chunks, decoded outside the HDF5 lock).
public struct HDF5ViewReader: ViewReader {
  /// One dataset per level, level 0 first.
  public let levels: [HDF5Dataset]
  /// The element type reported (may reinterpret the stored type of the same size).
  public let elementType: ElementType
  /// True when the datasets are 3-D with one z-plane and the view is 2-D.
  public let squeezeFirstAxis: Bool

  public init(levels: [HDF5Dataset], elementType: ElementType, squeezeFirstAxis: Bool = false) {
    self.levels = levels
    self.elementType = elementType
    self.squeezeFirstAxis = squeezeFirstAxis
  }

  public var location: ViewLocation? { ViewLocation(file: levels[0].file.path, dataset: levels[0].name) }

  public func preferredBlockShape(level: Int) -> [Int]? {
    guard let chunks = levels[level].chunkShape else { return nil }
    return squeezeFirstAxis ? Array(chunks.dropFirst()) : chunks
  }

  public func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer {
    precondition(levels.indices.contains(level), "level \(level) of \(levels.count)")
    guard squeezeFirstAxis else { return try levels[level].readBlock(box, as: elementType) }
    let box3 = Box(lower: [0] + box.lower, upper: [1] + box.upper)
    return try levels[level].readBlock(box3, as: elementType).reboxed(box)
  }

  public func read(_ box: Box, level: Int, into output: UnsafeMutableRawBufferPointer) throws {
    precondition(levels.indices.contains(level), "level \(level) of \(levels.count)")
    let box = squeezeFirstAxis ? Box(lower: [0] + box.lower, upper: [1] + box.upper) : box
    try levels[level].readBlock(box, into: output)  // same element size; the bits are kept
  }
}

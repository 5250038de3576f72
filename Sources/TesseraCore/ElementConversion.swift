/// Converts runs of voxels between element types with Tessera's rules (see ``VoxelElement``).
///
/// Dispatch happens once per run, on the two run-time element types; the loop inside is
/// specialised for the concrete pair, so callers in other modules, and generic callers, get a
/// tight loop without needing to specialise anything themselves.
public enum ElementConversion {
  /// Converts `count` voxels of type `from` at `source` into voxels of type `to` at
  /// `destination`. The two regions must not overlap (unless the types are equal and the
  /// regions identical).
  public static func convert(
    _ count: Int, from: ElementType, _ source: UnsafeRawPointer, to: ElementType,
    _ destination: UnsafeMutableRawPointer
  ) {
    if count == 0 { return }
    if from == to {
      destination.copyMemory(from: source, byteCount: count * from.byteCount)
      return
    }
    switch from {
    case .uint8: convert(count, UInt8.self, source, to, destination)
    case .int8: convert(count, Int8.self, source, to, destination)
    case .uint16: convert(count, UInt16.self, source, to, destination)
    case .int16: convert(count, Int16.self, source, to, destination)
    case .uint32: convert(count, UInt32.self, source, to, destination)
    case .int32: convert(count, Int32.self, source, to, destination)
    case .float32: convert(count, Float.self, source, to, destination)
    case .float64: convert(count, Double.self, source, to, destination)
    }
  }

  @inline(__always)
  static func convert<S: VoxelElement>(
    _ count: Int, _: S.Type, _ source: UnsafeRawPointer, _ to: ElementType, _ destination: UnsafeMutableRawPointer
  ) {
    let s = source.assumingMemoryBound(to: S.self)
    switch to {
    case .uint8: kernel(count, s, destination.assumingMemoryBound(to: UInt8.self))
    case .int8: kernel(count, s, destination.assumingMemoryBound(to: Int8.self))
    case .uint16: kernel(count, s, destination.assumingMemoryBound(to: UInt16.self))
    case .int16: kernel(count, s, destination.assumingMemoryBound(to: Int16.self))
    case .uint32: kernel(count, s, destination.assumingMemoryBound(to: UInt32.self))
    case .int32: kernel(count, s, destination.assumingMemoryBound(to: Int32.self))
    case .float32: kernel(count, s, destination.assumingMemoryBound(to: Float.self))
    case .float64: kernel(count, s, destination.assumingMemoryBound(to: Double.self))
    }
  }

  @inline(__always)
  static func kernel<S: VoxelElement, D: VoxelElement>(
    _ count: Int, _ s: UnsafePointer<S>, _ d: UnsafeMutablePointer<D>
  ) {
    // Float holds every value of the ≤16-bit types and of Float itself exactly; anything wider
    // goes through Double.
    if MemoryLayout<S>.size <= 2 || S.self == Float.self {
      for i in 0..<count { d[i] = D(clamping: s[i].floatValue) }
    } else {
      for i in 0..<count { d[i] = D(clamping: s[i].doubleValue) }
    }
  }
}

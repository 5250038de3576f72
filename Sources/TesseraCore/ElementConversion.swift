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
    from.dispatch(FromSource(count: count, source: source, to: to, destination: destination))
  }

  /// The source type known: dispatches on the destination type.
  private struct FromSource: ElementTypeBody {
    let count: Int
    let source: UnsafeRawPointer
    let to: ElementType
    let destination: UnsafeMutableRawPointer

    @inline(__always)
    func run<S: VoxelElement>(_: S.Type) {
      to.dispatch(Kernel(count: count, source: source.assumingMemoryBound(to: S.self), destination: destination))
    }
  }

  /// Both types known: the conversion loop.
  private struct Kernel<S: VoxelElement>: ElementTypeBody {
    let count: Int
    let source: UnsafePointer<S>
    let destination: UnsafeMutableRawPointer

    @inline(__always)
    func run<D: VoxelElement>(_: D.Type) {
      let (count, s) = (count, source)
      let d = destination.assumingMemoryBound(to: D.self)
      // Float holds every value of the ≤16-bit types and of Float itself exactly; anything wider
      // goes through Double.
      if MemoryLayout<S>.size <= 2 || S.self == Float.self {
        for i in 0..<count { d[i] = D(clamping: s[i].floatValue) }
      } else {
        for i in 0..<count { d[i] = D(clamping: s[i].doubleValue) }
      }
    }
  }
}

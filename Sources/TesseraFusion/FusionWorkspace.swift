import TesseraCore

/// Memory that one worker reuses from region to region: the source regions of the views (in their
/// element type), the accumulators of one slab of output rows, and the last result.
final class FusionWorkspace {
  private var sources: [ScratchBuffer] = []
  private let slab = ScratchBuffer()
  /// The last result handed out; reused for the next region once its reader has let go of it.
  var result: AnyVolumeBuffer?

  /// Source region number `slot` with room for `bytes` bytes (uninitialised).
  func source(_ slot: Int, bytes: Int) -> UnsafeMutableRawBufferPointer {
    while sources.count <= slot { sources.append(ScratchBuffer()) }
    return sources[slot].bytes(bytes)
  }

  /// Value and weight accumulators for `count` voxels and scratch for `scratch` (uninitialised).
  func slabBuffers(_ count: Int, scratch: Int) -> (
    value: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    let base = slab.floats(2 * count + scratch)
    return (base, base + count, base + 2 * count)
  }
}

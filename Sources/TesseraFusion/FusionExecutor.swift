import TesseraCore

/// Fuses output regions of a plan: reads what each contributing view must supply (through the
/// cache), resamples it and blends in the plan's fixed view order. A region's voxels depend only
/// on the inputs and the plan, never on which thread runs it or what ran before.
public struct FusionExecutor: Sendable {
  public let plan: FusionPlan
  public let cache: ViewBlockCache
  public let outputType: ElementType
  public let fillValue: Double

  public init(plan: FusionPlan, cache: ViewBlockCache, outputType: ElementType, fillValue: Double = 0) {
    self.plan = plan
    self.cache = cache
    self.outputType = outputType
    self.fillValue = fillValue
  }

  /// The fused voxels of spatial `box` for `block`'s channel and timepoint, or nil when no view
  /// reaches it (it stays fill).
  public func fuse(_ block: FusionPlan.PlannedBlock, box: Box) throws -> AnyVolumeBuffer? {
    var acc = ChunkAccumulator(box: box, blend: plan.blend)
    var any = false
    for v in block.views {
      guard let sourceBox = plan.sourceBox(view: v, for: box) else { continue }
      let source = try cache.read(view: plan.views[v].index, box: sourceBox)
      Resampler.accumulate(
        into: &acc, source: source, viewShape: plan.views[v].shape, outputToView: plan.outputToView[v],
        interpolation: plan.interpolation, blendWidth: plan.blendWidthVoxels[v])
      any = true
    }
    if !any || acc.isEmpty { return nil }
    return acc.result(as: outputType, fill: fillValue)
  }

  /// Bytes one region of `computeShape` needs while being fused: accumulators, the result and,
  /// per contributing view, its Float source region (about the region's size, plus support).
  public var bytesPerComputeRegion: Int {
    let voxels = plan.computeShape.reduce(1, *)
    let maxViews = plan.blocks.map(\.views.count).max() ?? 1
    let sourceVoxels = plan.computeShape.map { $0 + 2 }.reduce(1, *)
    return voxels * (4 + 4 + 4 + outputType.byteCount) + sourceVoxels * 4 * min(maxViews, 2)
  }
}

import TesseraCore

/// Fuses output regions of a plan: reads what each contributing view must supply (through the
/// cache), resamples it and blends in the plan's fixed view order. A region's voxels depend only
/// on the inputs and the plan, never on which thread runs it or what ran before.
public struct FusionExecutor: Sendable {
  public let plan: FusionPlan
  public let cache: ViewBlockCache
  public let outputType: ElementType
  public let fillValue: Double
  /// Where reading (``Stage/readDecode``) and resampling with blending (``Stage/resampleBlend``,
  /// with the voxels fused) are timed, or nil.
  public let clock: StageClock?

  private let workspaces = Pool { FusionWorkspace() }

  public init(
    plan: FusionPlan, cache: ViewBlockCache, outputType: ElementType, fillValue: Double = 0, clock: StageClock? = nil
  ) {
    self.plan = plan
    self.cache = cache
    self.outputType = outputType
    self.fillValue = fillValue
    self.clock = clock
  }

  /// Output voxels accumulated at once: a slab of rows small enough for the accumulators to stay
  /// in cache while every view adds to them.
  static let slabVoxels = 16384

  /// The fused voxels of spatial `box` for `block`'s channel and timepoint, or nil when no view
  /// reaches it (it stays fill). The result is labelled `resultBox` (default `box`; it may add
  /// leading axes of extent 1, such as the output's channel and time axes).
  public func fuse(_ block: FusionPlan.PlannedBlock, box: Box, resultBox: Box? = nil) throws -> AnyVolumeBuffer? {
    // The blend mode is chosen here, once per region; everything below is specialised for its rule.
    switch plan.blend {
    case .linear: try fuse(LinearBlend.self, block, box: box, resultBox: resultBox)
    case .mean: try fuse(MeanBlend.self, block, box: box, resultBox: resultBox)
    case .max: try fuse(MaxBlend.self, block, box: box, resultBox: resultBox)
    case .first: try fuse(FirstBlend.self, block, box: box, resultBox: resultBox)
    }
  }

  private func fuse<Rule: BlendRule>(
    _: Rule.Type, _ block: FusionPlan.PlannedBlock, box: Box, resultBox: Box?
  ) throws -> AnyVolumeBuffer? {
    try workspaces.withWorkspace { workspace in
      // Plan each contributing view once for the region, and read its source voxels.
      var samplers: [(sampler: ViewSampler<Rule>, source: UnsafeRawBufferPointer, type: ElementType)] = []
      for v in block.views {
        guard let sourceBox = plan.sourceBox(view: v, for: box) else { continue }
        let index = plan.views[v].index
        let type = cache.elementType(view: index)
        let source = workspace.source(samplers.count, bytes: sourceBox.volume * type.byteCount)
        try clock.time(.readDecode) { try cache.read(view: index, box: sourceBox, into: source) }
        let sampler = ViewSampler<Rule>(
          region: box, sourceBox: sourceBox, viewShape: plan.views[v].shape, outputToView: plan.outputToView[v],
          interpolation: plan.interpolation, blendWidth: plan.blendWidthVoxels[v])
        samplers.append((sampler, UnsafeRawBufferPointer(source), type))
      }
      guard let rows = samplers.first?.sampler.rows else { return nil }
      let rowLength = box.volume / rows
      let slabRows = max(1, Self.slabVoxels / max(1, rowLength))
      let (value, weight, scratch) = workspace.slabBuffers(slabRows * rowLength, scratch: 2 * rowLength + 8)
      // Reuse the previous result's memory when nobody else holds it any more (else this copies).
      let labelled = resultBox ?? box
      precondition(labelled.volume == box.volume, "result box \(labelled) for region \(box)")
      var out: AnyVolumeBuffer
      if let previous = workspace.result, previous.elementType == outputType, previous.box.volume == labelled.volume {
        workspace.result = nil
        out = previous.reboxed(labelled)
      } else {
        workspace.result = nil
        out = AnyVolumeBuffer(elementType: outputType, uninitializedBox: labelled)  // every voxel written below
      }
      var covered = false
      let start = clock == nil ? 0 : StageClock.threadSeconds()
      defer { clock?.add(.resampleBlend, seconds: StageClock.threadSeconds() - start, voxels: box.volume) }
      out.withUnsafeMutableBytes { dst in
        for r0 in stride(from: 0, to: rows, by: slabRows) {
          let r1 = min(rows, r0 + slabRows)
          let count = (r1 - r0) * rowLength
          value.update(repeating: Rule.initialValue, count: count)
          weight.update(repeating: 0, count: count)
          for (sampler, source, type) in samplers {
            let touched = sampler.accumulate(
              rows: r0..<r1, source: source, sourceType: type, value: value, weight: weight, scratch: scratch)
            covered = covered || touched
          }
          finish(Rule.self, count, value, weight, into: dst.baseAddress! + r0 * rowLength * outputType.byteCount)
        }
      }
      if !covered { return nil }
      workspace.result = out
      return out
    }
  }

  /// Finishes `count` accumulated voxels by `Rule` (normalise or not, the fill value where no
  /// view covered) and converts them to the output type (round, clamp) in one pass.
  private func finish<Rule: BlendRule>(
    _: Rule.Type, _ count: Int, _ value: UnsafeMutablePointer<Float>, _ weight: UnsafeMutablePointer<Float>,
    into destination: UnsafeMutableRawPointer
  ) {
    outputType.dispatch(
      Finish<Rule>(count: count, value: value, weight: weight, fill: Float(fillValue), destination: destination))
  }

  /// ``finish(_:_:_:_:into:)`` for the output's element type (the loop is `Rule.finish`, which
  /// takes everything as arguments).
  private struct Finish<Rule: BlendRule>: ElementTypeBody {
    let count: Int
    let value: UnsafeMutablePointer<Float>
    let weight: UnsafeMutablePointer<Float>
    let fill: Float
    let destination: UnsafeMutableRawPointer

    func run<T: VoxelElement>(_: T.Type) {
      Rule.finish(count, value: value, weight: weight, fill: fill, into: destination.assumingMemoryBound(to: T.self))
    }
  }

  /// Bytes one region of `computeShape` needs while being fused: the source regions of the views
  /// that reach it (each at most the region plus interpolation support, in the input type of
  /// `inputElementSize` bytes, plus the workspace's 25 % growth headroom), the slab accumulators,
  /// and the result (one kept by the workspace, one being encoded). Rotated views can need larger
  /// source regions than this bound assumes.
  public func bytesPerComputeRegion(inputElementSize: Int) -> Int {
    let voxels = plan.computeShape.reduce(1, *)
    let maxViews = plan.blocks.map(\.views.count).max() ?? 1
    let sourceVoxels = plan.computeShape.map { $0 + 2 }.reduce(1, *)
    let results = 2 * voxels * outputType.byteCount
    let sources = sourceVoxels * inputElementSize * maxViews * 5 / 4
    let slab = 3 * 4 * Self.slabVoxels
    return results + sources + slab
  }
}

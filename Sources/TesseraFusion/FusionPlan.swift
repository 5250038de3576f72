import TesseraCore

/// The fused output's voxel grid: `outputToWorld` = scale by `voxelSize`, then translate by
/// `origin` (the world position, µm, of voxel 0's centre).
public struct OutputGrid: Sendable, Hashable {
  /// Spatial shape (z, y, x or y, x).
  public var shape: [Int]
  /// µm per voxel.
  public var voxelSize: [Double]
  /// World µm of the centre of voxel 0.
  public var origin: [Double]

  public init(shape: [Int], voxelSize: [Double], origin: [Double]) {
    self.shape = shape
    self.voxelSize = voxelSize
    self.origin = origin
  }

  /// The grid whose voxel footprints tile the world box `[lower, upper)` (µm) with `voxelSize`:
  /// voxel 0's footprint starts at `lower`; the shape rounds up so that `upper` is covered.
  public init(lower: [Double], upper: [Double], voxelSize: [Double]) {
    self.voxelSize = voxelSize
    self.origin = zip(lower, voxelSize).map { $0 + 0.5 * $1 }
    self.shape = (0..<lower.count).map { d in
      max(1, Int(((upper[d] - lower[d]) / voxelSize[d] - 1e-6).rounded(.up)))
    }
  }

  public var rank: Int { shape.count }
  public var outputToWorld: AffineTransform { AffineTransform(scale: voxelSize, translation: origin) }
  public var bounds: Box { Box(shape: shape) }
}

/// How a voxel is sampled from a view.
public enum Interpolation: String, Sendable, Hashable, CaseIterable, Codable {
  case nearest, linear
}

/// How overlapping views are combined. Each mode is carried out by one `BlendRule` type
/// (`LinearBlend`, `MeanBlend`, `MaxBlend`, `FirstBlend`), chosen once per fused region.
public enum BlendMode: String, Sendable, Hashable, CaseIterable, Codable {
  /// Feathered average: each view's weight falls to zero at its border with a cosine ramp.
  case linear
  /// Plain average of the views covering a voxel.
  case mean
  /// Maximum (what DaskFusion does).
  case max
  /// The covering view with the lowest tile id wins.
  case first
}

/// One view as fusion sees it: geometry and identity, no file format.
public struct FusionView: Sendable, Hashable {
  /// Position in the dataset's view list (what the reader is looked up by).
  public var index: Int
  public var tile: Int
  public var channel: Int
  public var timepoint: Int
  /// Level-0 shape of the view, z, y, x (or y, x).
  public var shape: [Int]
  public var viewToWorld: AffineTransform

  public init(index: Int, tile: Int, channel: Int, timepoint: Int, shape: [Int], viewToWorld: AffineTransform) {
    self.index = index
    self.tile = tile
    self.channel = channel
    self.timepoint = timepoint
    self.shape = shape
    self.viewToWorld = viewToWorld
  }
}

/// Everything needed to fuse: computed once, then executed block by block, in any order, on any
/// number of threads or processes, with the same result.
///
/// The output array's blocks are indexed (t, c, spatial block); each planned block lists the
/// views that can contribute to it, in blending order (tile id, then view index). A view's
/// `outputToView` transform does not depend on the block, so it is stored once per view.
public struct FusionPlan: Sendable {
  public var grid: OutputGrid
  /// Output channel i fuses views of `channels[i]`; likewise timepoints.
  public var channels: [Int]
  public var timepoints: [Int]
  /// Spatial shape of one output block (a chunk, or a shard).
  public var blockShape: [Int]
  /// Spatial shape of the unit computed at once inside a block (the chunk; equal to the block
  /// when not sharded).
  public var computeShape: [Int]
  public var interpolation: Interpolation
  public var blend: BlendMode
  /// Feathering width per axis, µm (blend `linear` only).
  public var blendWidth: [Double]
  /// The views, and per view its output-voxel → view-voxel transform and blend width in view
  /// voxels.
  public var views: [FusionView]
  public var outputToView: [AffineTransform]
  public var blendWidthVoxels: [[Double]]
  /// Blocks touched by at least one view, in C order of (t, c, spatial block).
  public var blocks: [PlannedBlock]
  /// Number of blocks in the output grid, touched or not.
  public var totalBlocks: Int

  /// One output block and the views that reach it.
  public struct PlannedBlock: Sendable, Hashable {
    /// Index into `timepoints` and `channels`.
    public var t: Int
    public var c: Int
    /// Spatial block index.
    public var block: [Int]
    /// Indices into `views`, in blending order.
    public var views: [Int]
  }

  /// The spatial block grid.
  public var blockGrid: ChunkGrid { try! ChunkGrid(shape: grid.shape, chunkShape: blockShape) }

  /// Plans a fusion.
  ///
  /// - Throws: ``GeometryError`` when a view's transform is singular.
  public init(
    views: [FusionView], grid: OutputGrid, channels: [Int], timepoints: [Int], blockShape: [Int],
    computeShape: [Int]? = nil, interpolation: Interpolation = .linear, blend: BlendMode = .linear,
    blendWidth: [Double]
  ) throws {
    precondition(grid.rank == blockShape.count, "block shape rank")
    self.grid = grid
    self.channels = channels
    self.timepoints = timepoints
    self.blockShape = blockShape
    self.computeShape = computeShape ?? blockShape
    self.interpolation = interpolation
    self.blend = blend
    self.blendWidth = blendWidth
    let ordered = views.filter { channels.contains($0.channel) && timepoints.contains($0.timepoint) }
      .sorted { ($0.tile, $0.index) < ($1.tile, $1.index) }
    self.views = ordered
    let outputToWorld = grid.outputToWorld
    var transforms: [AffineTransform] = []
    var widths: [[Double]] = []
    for v in ordered {
      transforms.append(compose(try v.viewToWorld.inverse(), outputToWorld))
      // World µm per view voxel along each view axis: the length of the linear part's columns.
      widths.append(
        (0..<v.shape.count).map { d in
          let length = (0..<v.shape.count).map { v.viewToWorld[$0, d] * v.viewToWorld[$0, d] }.reduce(0, +)
            .squareRoot()
          return blendWidth[d] / length
        })
    }
    self.outputToView = transforms
    self.blendWidthVoxels = widths
    let blockGrid = try ChunkGrid(shape: grid.shape, chunkShape: blockShape)
    self.totalBlocks = blockGrid.chunkCount * channels.count * timepoints.count
    // For each view, the output blocks its footprint reaches (grown by the support).
    var touching = [[Int]](repeating: [], count: blockGrid.chunkCount)
    for (i, v) in ordered.enumerated() {
      let viewToOutput = try transforms[i].inverse()
      let reach = viewToOutput.boundingBox(of: Box(shape: v.shape)).grown(by: 1)
      for b in blockGrid.chunks(intersecting: reach) { touching[blockGrid.linearIndex(ofChunk: b)].append(i) }
    }
    var blocks: [PlannedBlock] = []
    for (ti, t) in timepoints.enumerated() {
      for (ci, c) in channels.enumerated() {
        for (linear, list) in touching.enumerated() {
          let mine = list.filter { ordered[$0].channel == c && ordered[$0].timepoint == t }
          if mine.isEmpty { continue }
          blocks.append(PlannedBlock(t: ti, c: ci, block: blockGrid.chunkIndex(linear: linear), views: mine))
        }
      }
    }
    self.blocks = blocks
  }

  /// The region of view `v` (view voxels, clipped to the view) that output `box` samples, or nil
  /// if the view does not reach the box.
  public func sourceBox(view v: Int, for box: Box) -> Box? {
    guard let (lo, hi) = outputToView[v].centreBounds(of: box) else { return nil }
    let shape = views[v].shape
    // Sample positions outside the view's footprint [-0.5, n - 0.5) take nothing from it.
    for d in 0..<shape.count where hi[d] < -0.5 || lo[d] >= Double(shape[d]) - 0.5 { return nil }
    // Linear taps are floor(p) and floor(p) + 1; nearest rounds to one of them.
    let lower = lo.map { Int(($0 - 1e-6).rounded(.down)) }
    let upper = hi.map { Int(($0 + 1e-6).rounded(.down)) + 2 }
    let clipped = Box(lower: lower, upper: upper).intersection(Box(shape: shape))
    return clipped.isEmpty ? nil : clipped
  }

  /// A histogram of how many views reach each planned block: `[views: blocks]`.
  public var viewsPerBlockHistogram: [Int: Int] {
    blocks.reduce(into: [:]) { $0[$1.views.count, default: 0] += 1 }
  }
}

extension FusionPlan {
  /// The default feathering width per axis (µm): for each axis, the largest overlap between two
  /// views of the same channel that are neighbours along it (their overlap is thinnest along that
  /// axis), so each view's weight falls to zero across the whole overlap. 0 on axes along which
  /// no views overlap.
  public static func defaultBlendWidth(views: [FusionView]) -> [Double] {
    guard let rank = views.first?.shape.count else { return [] }
    var width = [Double](repeating: 0, count: rank)
    let bounds = views.map { v in
      v.viewToWorld.continuousBounds(
        ofCorners: v.shape.map { _ in -0.5 }, v.shape.map { Double($0) - 0.5 })
    }
    for (i, j) in BoxOverlaps.pairs(lower: bounds.map(\.lower), upper: bounds.map(\.upper))
    where views[i].channel == views[j].channel && views[i].timepoint == views[j].timepoint {
      let extent = (0..<rank).map { d in
        min(bounds[i].upper[d], bounds[j].upper[d]) - max(bounds[i].lower[d], bounds[j].lower[d])
      }
      // The axis along which the two views are neighbours: the thinnest overlap relative to size.
      let sizes = (0..<rank).map { d in bounds[i].upper[d] - bounds[i].lower[d] }
      let axis = (0..<rank).min { extent[$0] / sizes[$0] < extent[$1] / sizes[$1] }!
      if extent[axis] < sizes[axis] * 0.999 { width[axis] = max(width[axis], extent[axis]) }
    }
    return width
  }
}

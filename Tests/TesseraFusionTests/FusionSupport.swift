import Dispatch
import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraFusion

typealias AffineTransform = TesseraCore.AffineTransform

/// A view held in memory.
struct MemoryReader: ViewReader {
  let data: AnyVolumeBuffer
  func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer {
    switch data {
    case .uint16(let b): AnyVolumeBuffer(b.extracting(box))
    case .float32(let b): AnyVolumeBuffer(b.extracting(box))
    default: fatalError("test reader supports uint16 and float32")
    }
  }
}

struct TestView {
  var data: AnyVolumeBuffer
  var viewToWorld: AffineTransform
  var tile: Int
  var channel: Int = 0
}

/// A smooth analytic intensity field (sum of Gaussians in world µm), for ground truth at any
/// position.
struct BlobField {
  var centres: [[Double]]
  var sigmas: [Double]
  var amplitudes: [Double]

  init(rank: Int, extent: [Double], count: Int, seed: UInt64) {
    var rng = SeedRNG(seed)
    centres = (0..<count).map { _ in (0..<rank).map { Double.random(in: 0..<extent[$0], using: &rng) } }
    sigmas = (0..<count).map { _ in Double.random(in: 4...7, using: &rng) }
    amplitudes = (0..<count).map { _ in Double.random(in: 500...2000, using: &rng) }
  }

  func value(_ p: [Double]) -> Double {
    var s = 100.0
    for i in centres.indices {
      var r2 = 0.0
      for d in p.indices {
        let x = p[d] - centres[i][d]
        r2 += x * x
      }
      if r2 < 36 * sigmas[i] * sigmas[i] { s += amplitudes[i] * exp(-r2 / (2 * sigmas[i] * sigmas[i])) }
    }
    return s
  }

  /// A view of `shape` sampled from the field through `viewToWorld`.
  func render(shape: [Int], viewToWorld: AffineTransform) -> VolumeBuffer<Float> {
    var out = VolumeBuffer<Float>(shape: shape)
    var i = 0
    Box(shape: shape).forEachIndex { q in
      out.storage[i] = Float(value(viewToWorld.apply(q)))
      i += 1
    }
    return out
  }
}

struct SeedRNG: RandomNumberGenerator {
  var state: UInt64
  init(_ seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Fuses in memory: every planned block, in the given order, on `threads` threads; returns one
/// buffer per channel over the whole grid (fill 0). Views are read through the block cache, or
/// region by region when `direct`.
func fuse(
  _ views: [TestView], grid: OutputGrid, blockShape: [Int], computeShape: [Int]? = nil, blend: BlendMode = .linear,
  interpolation: Interpolation = .linear, blendWidth: [Double]? = nil, outputType: ElementType = .float32,
  reversed: Bool = false, threads: Int = 1, cacheBudget: Int = 1 << 30, direct: Bool = false
) throws -> [AnyVolumeBuffer] {
  let fusionViews = views.enumerated().map { i, v in
    FusionView(
      index: i, tile: v.tile, channel: v.channel, timepoint: 0, shape: v.data.box.shape, viewToWorld: v.viewToWorld)
  }
  let channels = Array(Set(views.map(\.channel))).sorted()
  let plan = try FusionPlan(
    views: fusionViews, grid: grid, channels: channels, timepoints: [0], blockShape: blockShape,
    computeShape: computeShape, interpolation: interpolation, blend: blend,
    blendWidth: blendWidth ?? FusionPlan.defaultBlendWidth(views: fusionViews))
  var sources: [Int: ViewBlockCache.Source] = [:]
  for (i, v) in views.enumerated() {
    sources[i] = .init(
      reader: MemoryReader(data: v.data), shape: v.data.box.shape, elementType: v.data.elementType,
      blockShape: direct ? nil : v.data.box.shape.map { min($0, 16) })
  }
  let executor = FusionExecutor(
    plan: plan, cache: ViewBlockCache(sources: sources, budget: cacheBudget), outputType: outputType)
  let outputs = Outputs(channels.map { _ in AnyVolumeBuffer(elementType: outputType, box: grid.bounds) })
  let blocks = reversed ? plan.blocks.reversed() : plan.blocks
  let blockGrid = plan.blockGrid
  let computeGrid = plan.computeShape
  let failure = NSLock()
  nonisolated(unsafe) var firstError: (any Error)?
  DispatchQueue.concurrentPerform(iterations: threads) { worker in
    for (k, b) in blocks.enumerated() where k % threads == worker {
      do {
        let blockBox = blockGrid.box(ofChunk: b.block)
        let inner = try ChunkGrid(shape: grid.shape, chunkShape: computeGrid)
        for c in inner.chunks(intersecting: blockBox) {
          let box = inner.box(ofChunk: c).intersection(blockBox)
          if let r = try executor.fuse(b, box: box) { outputs.write(channel: b.c, r) }
        }
      } catch {
        failure.withLock { firstError = firstError ?? error }
      }
    }
  }
  if let firstError { throw firstError }
  return outputs.values
}

final class Outputs: @unchecked Sendable {
  private let lock = NSLock()
  private var buffers: [AnyVolumeBuffer]
  init(_ b: [AnyVolumeBuffer]) { buffers = b }
  func write(channel: Int, _ data: AnyVolumeBuffer) {
    lock.withLock {
      let box = buffers[channel].box
      buffers[channel].withUnsafeMutableBytes { dst in
        data.withUnsafeBytes { src in
          RawCopy.copy(
            elementSize: data.elementType.byteCount, from: src.baseAddress!, sourceBox: data.box, to: dst.baseAddress!,
            destinationBox: box)
        }
      }
    }
  }
  var values: [AnyVolumeBuffer] { lock.withLock { buffers } }
}

func bytesEqual(_ a: AnyVolumeBuffer, _ b: AnyVolumeBuffer) -> Bool {
  a.elementType == b.elementType && a.box == b.box
    && a.withUnsafeBytes { x in b.withUnsafeBytes { x.elementsEqual($0) } }
}

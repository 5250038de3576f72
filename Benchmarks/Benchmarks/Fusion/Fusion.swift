// Fusion kernels, one core: one output region of 1 Mvoxel (1024×1024 in 2D, 64×128×128 in 3D)
// fused from two overlapping views held in memory — nearest and linear interpolation, the
// translation fast path against rotated views (the general affine path), uint16 and float32
// input, and each blend mode; then planning a fusion of 10,000 tiles. Throughput is regions (or
// plans) per second; allocations are counted per region: the per-voxel loops allocate nothing,
// so the count stays that of the region's buffers whatever its size.
import Benchmark
import Tessera

/// A view held in memory.
struct MemoryReader<T: VoxelElement>: ViewReader {
  let volume: VolumeBuffer<T>
  func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer { AnyVolumeBuffer(volume.extracting(box)) }
}

/// Two views side by side along x (15 % overlap), each `tile` voxels, and an executor for the
/// region of `region` voxels straddling their overlap.
func setup<T: VoxelElement>(
  _: T.Type, tile: [Int], region: [Int], interpolation: Interpolation, blend: BlendMode, rotated: Bool
) throws -> (FusionExecutor, FusionPlan.PlannedBlock, Box) {
  let n = tile.count
  let texture = SyntheticAcquisition(tileShape: tile, grid: Array(repeating: 1, count: n), seed: 7)
    .renderVolume(channel: 0)
  let volume: VolumeBuffer<T> = texture.converted(to: T.self)
  let step = Double(tile[n - 1]) * 0.85
  var views: [FusionView] = []
  var sources: [Int: ViewBlockCache.Source] = [:]
  for i in 0..<2 {
    var position = Array(repeating: 0.0, count: n)
    position[n - 1] = Double(i) * step + 0.37  // subpixel: every voxel interpolates
    var transform = AffineTransform(translation: position)
    if rotated {
      // 1° about the first axis' normal in the y,x plane.
      let (c, s) = (0.99984769515639, 0.01745240643728351)
      var linear = (0..<n).map { r in (0..<n).map { $0 == r ? 1.0 : 0.0 } }
      linear[n - 2][n - 2] = c
      linear[n - 2][n - 1] = -s
      linear[n - 1][n - 2] = s
      linear[n - 1][n - 1] = c
      transform = compose(transform, try AffineTransform(linear: linear, translation: Array(repeating: 0, count: n)))
    }
    views.append(FusionView(index: i, tile: i, channel: 0, timepoint: 0, shape: tile, viewToWorld: transform))
    sources[i] = .init(reader: MemoryReader(volume: volume), shape: tile, elementType: T.elementType, blockShape: nil)
  }
  // The region: centred on the overlap along x, in the middle of the other axes.
  var origin = (0..<n).map { Double((tile[$0] - region[$0]) / 2) }
  origin[n - 1] = step + Double(tile[n - 1]) * 0.075 - Double(region[n - 1]) / 2
  let grid = OutputGrid(shape: region, voxelSize: Array(repeating: 1, count: n), origin: origin)
  let plan = try FusionPlan(
    views: views, grid: grid, channels: [0], timepoints: [0], blockShape: region, interpolation: interpolation,
    blend: blend, blendWidth: FusionPlan.defaultBlendWidth(views: views))
  let cache = ViewBlockCache(sources: sources, budget: 1 << 30)
  return (FusionExecutor(plan: plan, cache: cache, outputType: .uint16), plan.blocks[0], Box(shape: region))
}

/// `count` tiles of 512×512 on a square grid (15 % overlap), planned into 1024×1024 blocks.
func plan10k(_ count: Int) throws -> FusionPlan {
  let side = Int(Double(count).squareRoot().rounded(.up))
  let views = (0..<count).map { i in
    FusionView(
      index: i, tile: i, channel: 0, timepoint: 0, shape: [512, 512],
      viewToWorld: AffineTransform(translation: [Double(i / side) * 435.2, Double(i % side) * 435.2]))
  }
  let lower = [0.0, 0.0]
  let upper = [Double(side) * 435.2 + 76.8, Double(side) * 435.2 + 76.8]
  return try FusionPlan(
    views: views, grid: OutputGrid(lower: lower, upper: upper, voxelSize: [1, 1]), channels: [0], timepoints: [0],
    blockShape: [1024, 1024], blendWidth: [76.8, 76.8])
}

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .milliseconds, warmupIterations: 1,
    scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 30)

  let shapes: [(String, [Int], [Int])] = [
    ("2D", [2048, 2048], [1024, 1024]), ("3D", [64, 256, 256], [64, 128, 128]),
  ]
  func add<T: VoxelElement>(
    _ type: T.Type, _ label: String, _ tile: [Int], _ region: [Int], _ interpolation: Interpolation,
    _ blend: BlendMode, rotated: Bool
  ) {
    let name =
      "fuse 1 Mvoxel \(label) \(T.elementType) \(interpolation) \(rotated ? "rotated" : "translation") \(blend)"
    Benchmark(name) { benchmark in
      let (executor, block, box) = try setup(
        T.self, tile: tile, region: region, interpolation: interpolation, blend: blend, rotated: rotated)
      _ = try executor.fuse(block, box: box)  // workspace warmed
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations { blackHole(try executor.fuse(block, box: box)) }
    }
  }
  for (label, tile, region) in shapes {
    for interpolation in [Interpolation.nearest, .linear] {
      for rotated in [false, true] {
        add(UInt16.self, label, tile, region, interpolation, .linear, rotated: rotated)
      }
    }
    add(Float.self, label, tile, region, .linear, .linear, rotated: false)
    for blend in [BlendMode.max, .mean, .first] {
      add(UInt16.self, label, tile, region, .linear, blend, rotated: false)
    }
  }
  Benchmark("plan a fusion of 10,000 tiles of 512×512") { benchmark in
    for _ in benchmark.scaledIterations { blackHole(try plan10k(10_000)) }
  }
}

// Registration kernels, one core: phase correlation of one pair (FFT, peak verification and the
// subpixel fit) for overlap regions of the sizes the benchmarks register, 2D and 3D; and the
// global solve (with rejection) for 10,000 tiles on a 100×100 grid (19,800 links), on one and two
// threads.
import Benchmark
import Tessera

/// Two regions of `shape` cut from a synthetic texture 3 voxels apart along every axis.
func pair(_ shape: [Int]) -> (VolumeBuffer<Float>, VolumeBuffer<Float>) {
  let n = shape.count
  let texture = SyntheticAcquisition(
    tileShape: shape.map { $0 + 8 }, grid: Array(repeating: 1, count: n), seed: 11
  ).renderVolume(channel: 0).converted(to: Float.self)
  let a = texture.extracting(Box(lower: Array(repeating: 2, count: n), upper: shape.map { $0 + 2 }))
  let b = texture.extracting(Box(lower: Array(repeating: 5, count: n), upper: shape.map { $0 + 5 }))
  return (a.reboxed(Box(shape: shape)), b.reboxed(Box(shape: shape)))
}

/// A 100×100 grid of 512×512 tiles, links to the right and down neighbours with the true shifts
/// plus noise of 0.05 voxel, and 1 % of them (214) 3 voxels wrong, which it also returns.
func gridLinks(side: Int) -> (tiles: [Int], links: [RegistrationLink], wrong: Set<Int>) {
  var rng = SplitMix64(seed: 5)
  func noise() -> Double { (Double(rng.next() % 1_000_001) / 1_000_000 - 0.5) * 0.1 }
  var links: [RegistrationLink] = []
  var wrongLinks = Set<Int>()
  for r in 0..<side {
    for c in 0..<side {
      for (dr, dc) in [(0, 1), (1, 0)] where r + dr < side && c + dc < side {
        let wrong = rng.next() % 100 == 0 ? 3.0 : 0
        if wrong != 0 { wrongLinks.insert(links.count) }
        let shift = [noise() + wrong, noise()]
        links.append(
          RegistrationLink(
            tiles: [r * side + c, (r + dr) * side + c + dc], overlapVoxels: dc == 1 ? [512, 77] : [77, 512],
            shiftVoxels: shift, shiftUm: shift, correlation: 0.9, accepted: true, uncertaintyVoxels: [0.05, 0.05]))
      }
    }
  }
  return (Array(0..<(side * side)), links, wrongLinks)
}

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .milliseconds, warmupIterations: 1,
    scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 30)

  // Overlaps of the benchmark tilings: 15 % of 512² and 2048² tiles (2D), of 64×256×256 tiles and
  // of the confocal nuclei tiles 16×92×128 (3D).
  for shape in [[512, 77], [2048, 307], [64, 256, 38], [16, 92, 20]] {
    let label = shape.map(String.init).joined(separator: "×")
    Benchmark("phase correlation \(label) (\(shape.reduce(1, *) / 1000) kvoxel)") { benchmark in
      let (a, b) = pair(shape)
      let correlator = PhaseCorrelation(maxShift: Array(repeating: 10, count: shape.count))
      let plans = FFTPlanCache()
      _ = correlator.measure(a, b, plans: plans)  // plan made, buffers allocated
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations { blackHole(correlator.measure(a, b, plans: plans)) }
    }
  }
  // The axes solve side by side on up to `threads` threads (the default is every core).
  for threads in [1, 2] {
    Benchmark("global solve, 10,000 tiles (19,800 links, 1 % wrong), \(threads) thread\(threads == 1 ? "" : "s")") {
      benchmark in
      let (tiles, links, wrong) = gridLinks(side: 100)
      var options = RegistrationOptions(maxShift: [10, 10])
      options.threads = threads
      // What README claims: every wrong link rejected, no good one.
      let check = TileRegistration.solve(
        tiles: tiles, links: links, rank: 2, voxel: [1, 1], options: options, overlaps: [])
      let rejected = Set(check.links.indices.filter { !check.links[$0].accepted })
      precondition(
        rejected == wrong,
        "rejected \(rejected.count) links, \(rejected.intersection(wrong).count) of the \(wrong.count) wrong")
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations {
        blackHole(
          TileRegistration.solve(tiles: tiles, links: links, rank: 2, voxel: [1, 1], options: options, overlaps: []))
      }
    }
  }
}

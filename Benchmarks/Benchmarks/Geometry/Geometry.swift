// Core data movement: sub-box copies and type conversion of N-D buffers, 2D versus 3D at the
// same voxel count (4 Mi voxels), one core.
import Benchmark
import Tessera

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput], timeUnits: .milliseconds, warmupIterations: 1,
    maxDuration: .seconds(3), maxIterations: 30)

  for shape in [[2048, 2048], [64, 256, 256]] {
    let label = shape.map(String.init).joined(separator: "×")
    let src = VolumeBuffer<UInt16>(shape: shape, repeating: 1234)
    Benchmark("copy sub-box uint16 \(label)") { benchmark in
      var dst = VolumeBuffer<UInt16>(box: Box(shape: shape).grown(by: -1))
      for _ in benchmark.scaledIterations {
        dst.copy(from: src)
        blackHole(dst)
      }
    }
    Benchmark("convert uint16→float32 \(label)") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(src.converted(to: Float.self)) }
    }
    let f = src.converted(to: Float.self)
    Benchmark("convert float32→uint16 \(label)") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(f.converted(to: UInt16.self)) }
    }
  }
}

import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO

@Suite struct BSplineSamplerTests {
  /// Seeded random samples in [0, 1000).
  static func randomVolume(_ shape: [Int], seed: UInt64 = 3) -> DoubleVolume {
    var rng = SplitMix64(seed: seed)
    return DoubleVolume(
      shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Double.random(in: 0..<1000, using: &rng) })
  }

  @Test(arguments: [[17], [9, 10, 11], [3, 40], [2, 5, 31]])
  func integerPositionsReproduceTheSamples(shape: [Int]) {
    let v = Self.randomVolume(shape)
    let spline = CubicBSpline(samples: v)
    let out = spline.sample(at: shape.map { n in (0..<n).map(Double.init) })
    let worst = zip(out.values, v.values).map { abs($0 - $1) }.max()!
    #expect(worst < 1e-9)  // Double arithmetic on values < 1000; well inside Float's 6e-5 at 1000
  }

  /// f(y, x) = sin(2πy/λ₁ + 0.3)·cos(2πx/λ₂), wavelengths 12 and 16 samples.
  static func smooth(_ y: Double, _ x: Double) -> Double {
    sin(2 * Double.pi * y / 12 + 0.3) * cos(2 * Double.pi * x / 16)
  }

  @Test func subpixelShiftOfASmoothFunctionMatchesTheAnalyticValue() {
    let n = 64
    var values: [Double] = []
    for y in 0..<n { for x in 0..<n { values.append(Self.smooth(Double(y), Double(x))) } }
    let spline = CubicBSpline(samples: DoubleVolume(shape: [n, n], values: values))
    let (ty, tx) = (0.37, -0.61)
    let out = spline.sample(at: [(0..<n).map { Double($0) + ty }, (0..<n).map { Double($0) + tx }])
    // Interior (8 samples from the mirrored ends): cubic spline interpolation of a wavelength of
    // 12 samples has a relative error of order (2π/12)⁴/24 ≈ 3e-3; measured 1.3e-3.
    var worst = 0.0
    for y in 8..<(n - 8) {
      for x in 8..<(n - 8) {
        worst = max(worst, abs(out.values[y * n + x] - Self.smooth(Double(y) + ty, Double(x) + tx)))
      }
    }
    #expect(worst < 3e-3)
  }

  @Test func shiftingForthAndBackRecoversTheInterior() {
    // A smooth random texture: eight plane waves, wavelengths 10–24 samples, random directions and phases.
    var rng = SplitMix64(seed: 11)
    let waves = (0..<8).map { _ -> ([Double], Double) in
      let k = (0..<3).map { _ in
        2 * Double.pi / Double.random(in: 10...24, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
      }
      return (k, Double.random(in: 0..<(2 * Double.pi), using: &rng))
    }
    var values: [Double] = []
    for z in 0..<24 {
      for y in 0..<40 {
        for x in 0..<40 {
          values.append(
            500
              + waves.map { k, phase in 10 * sin(k[0] * Double(z) + k[1] * Double(y) + k[2] * Double(x) + phase) }
              .reduce(0, +))
        }
      }
    }
    let v = DoubleVolume(shape: [24, 40, 40], values: values)
    let t = [0.3, -0.45, 0.7]
    let shifted = CubicBSpline(samples: v).sample(at: (0..<3).map { d in (0..<v.shape[d]).map { Double($0) + t[d] } })
    let back = CubicBSpline(samples: shifted).sample(
      at: (0..<3).map { d in
        (0..<v.shape[d]).map { Double($0) - t[d] }
      })
    let strides = [40 * 40, 40, 1]
    var worst = 0.0
    var range = 0.0
    for z in 6..<18 {
      for y in 6..<34 {
        for x in 6..<34 {
          let i = z * strides[0] + y * strides[1] + x
          worst = max(worst, abs(back.values[i] - v.values[i]))
          range = max(range, abs(v.values[i] - 500))
        }
      }
    }
    // The shift attenuates the highest frequencies a little (no interpolator is exactly
    // invertible); for wavelengths of 10 samples and more the round trip stays within 0.2 % of
    // the texture's contrast (measured: 0.035 %).
    #expect(worst < 0.002 * range)
  }

  @Test func boxAverageIsTheFootprintMean() {
    let v = DoubleVolume(shape: [7], values: [0, 3, 6, 9, 12, 15, 18])
    let three = v.applying(AxisOperator.boxAverage(width: 3, count: 7), along: 0)
    #expect(three.values[1...5].elementsEqual([3, 6, 9, 12, 15]))  // a linear ramp keeps its values
    #expect(three.values[0] == (3 + 0 + 3) / 3.0)  // mirrored end
    // A non-integer width weights the partial samples by their overlap; constants stay constant.
    let c = DoubleVolume(shape: [9], values: Array(repeating: 4, count: 9))
    let wide = c.applying(AxisOperator.boxAverage(width: 2.5, count: 9), along: 0)
    #expect(wide.values.allSatisfy { abs($0 - 4) < 1e-12 })
    #expect(AxisOperator.boxAverage(width: 1, count: 5).rows.allSatisfy { $0.count == 1 && $0[0].weight == 1 })
  }
}

/// Equal up to the last digit: Foundation's JSON parser on Linux rounds some Doubles by an ulp
/// (the file itself round-trips exactly; Tests/Interop checks it with Python's parser).
func close(_ a: [[Double]], _ b: [[Double]]) -> Bool {
  a.count == b.count
    && zip(a, b).allSatisfy { x, y in
      x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) <= 1e-13 * max(1, abs($1)) }
    }
}

@Suite struct SimulateSourceTests {
  /// A 20×60×70 uint16 "real" volume with texture everywhere.
  static func source() -> DoubleVolume {
    var rng = SplitMix64(seed: 5)
    return DoubleVolume(
      shape: [20, 60, 70], values: (0..<(20 * 60 * 70)).map { _ in Double(UInt16.random(in: 100...4000, using: &rng)) })
  }

  static func acquisition(subpixel: Double = 1, voxel: [Double] = [1, 1, 1], seed: UInt64 = 2) throws
    -> SourceAcquisition
  {
    try SourceAcquisition(
      source: source(), sourceElementType: .uint16, sourceVoxelSize: [1, 1, 1], tileShape: [8, 32, 36],
      grid: [1, 2, 2], overlap: 0.2, voxelSize: voxel, jitter: 3, subpixel: subpixel, noise: .none, seed: seed)
  }

  @Test func integerPositionsCutTheSourceExactly() throws {
    let a = try Self.acquisition(subpixel: 0)
    let spline = a.spline()
    for t in 0..<a.tileCount {
      let origin = a.truePositions[t].map { Int($0) }
      #expect(a.truePositions[t].allSatisfy { $0 == $0.rounded() })
      let tile = a.renderTile(t, spline: spline)
      let expected = a.source.cropped(lower: origin, extent: a.tileShape)
      #expect(tile.storage == expected.values.map { UInt16($0) })
    }
  }

  @Test func truthJSONMatchesTheAttributesAndRunsAreByteIdentical() throws {
    let dirs = [TemporaryDirectory(), TemporaryDirectory()]
    let a = try Self.acquisition(voxel: [2, 1, 1])
    let provenance = SimulationProvenance(
      source: "test.npy", sourceShape: [20, 60, 70], crop: Box(shape: [20, 60, 70]), sourceElementType: .uint16)
    for d in dirs { try a.write(to: d.url.path, deflateLevel: 1, chunkShape: [4, 16, 16], provenance: provenance) }
    let truth =
      try JSONSerialization.jsonObject(with: Data(contentsOf: dirs[0].url.appendingPathComponent("truth.json")))
      as! [String: Any]
    let stated = truth["stated_positions_um"] as! [[Double]]
    let truePositions = truth["true_positions_um"] as! [[Double]]
    #expect(truth["voxel_size_um"] as! [Double] == [2, 1, 1])
    #expect(close(truePositions, a.truePositions))
    #expect(truePositions.contains { p in p.contains { $0 != $0.rounded() } })  // subpixel truth
    let files = truth["files"] as! [String]
    #expect(files.count == 4)
    for (t, name) in files.enumerated() {
      let f = try HDF5File(path: dirs[0].path(name))
      #expect(close([f.numericAttribute("position_um", of: "ch0") ?? []], [stated[t]]))
      #expect(f.numericAttribute("voxel_size_um", of: "ch0") == [2, 1, 1])
      let d = try f.dataset("ch0")
      #expect(d.chunkShape == [4, 16, 16])
      #expect(d.shape == [8, 32, 36])
      // Stated = true + at most 3 voxels, only along the tiled axes (y, x).
      #expect(stated[t][0] == truePositions[t][0])
      #expect(zip(stated[t], truePositions[t]).allSatisfy { abs($0 - $1) <= 3 * 1 + 1e-9 })
    }
    for name in files + ["truth.json"] {
      #expect(
        FileManager.default.contents(atPath: dirs[0].path(name))
          == FileManager.default.contents(atPath: dirs[1].path(name)), "\(name) differs between runs")
    }
  }

  @Test func aGridThatDoesNotFitNamesWhatFits() {
    expectError(["does not fit", "largest grid of these tiles is 1×1×1", "largest tile for this grid 19×"]) {
      _ = try SourceAcquisition(
        source: Self.source(), sourceElementType: .uint16, sourceVoxelSize: [1, 1, 1], tileShape: [8, 40, 40],
        grid: [1, 2, 2], overlap: 0.1, voxelSize: [1, 1, 1], jitter: 0, seed: 1)
    }
    expectError(["3-D", "need 3 values"]) {
      _ = try SourceAcquisition(
        source: Self.source(), sourceElementType: .uint16, sourceVoxelSize: [1, 1], tileShape: [8, 8],
        grid: [1, 1], overlap: 0.1, voxelSize: [1, 1], jitter: 0, seed: 1)
    }
  }

  @Test func signedSourcesAreShiftedIntoUint16AndNoiseIsSeeded() throws {
    var v = Self.source()
    v.values = v.values.map { $0 - 2000 }
    let a = try SourceAcquisition(
      source: v, sourceElementType: .int16, sourceVoxelSize: [1, 1, 1], tileShape: [8, 32, 36], grid: [1, 2, 2],
      overlap: 0.2, voxelSize: [1, 1, 1], jitter: 0, subpixel: 0, noise: .poisson, seed: 4)
    #expect(a.intensityOffset == 2000 - 100)
    #expect(a.intensityScale == 1)
    let spline = a.spline()
    let one = a.renderTile(1, spline: spline)
    #expect(one.storage == a.renderTile(1, spline: spline).storage)
    let clean = try SourceAcquisition(
      source: v, sourceElementType: .int16, sourceVoxelSize: [1, 1, 1], tileShape: [8, 32, 36], grid: [1, 2, 2],
      overlap: 0.2, voxelSize: [1, 1, 1], jitter: 0, subpixel: 0, seed: 4
    ).renderTile(1, spline: spline)
    let diffs = zip(one.storage, clean.storage).map { Double($0) - Double($1) }
    let meanSquare = diffs.map { $0 * $0 }.reduce(0, +) / Double(diffs.count)
    let meanValue = clean.storage.map(Double.init).reduce(0, +) / Double(clean.count)
    #expect(abs(meanSquare / meanValue - 1) < 0.1)  // Poisson: variance = mean
  }
}

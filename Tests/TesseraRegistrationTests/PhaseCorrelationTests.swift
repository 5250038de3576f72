import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraRegistration

@Suite struct PhaseCorrelationTests {
  /// A smooth random texture (sum of Gaussian blobs) evaluated at any continuous position.
  struct Texture {
    var centres: [[Double]]
    var sigma: [Double]
    init(rank: Int, extent: Double, count: Int, seed: UInt64) {
      var state = seed
      func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(state >> 11) / Double(1 << 53)
      }
      centres = (0..<count).map { _ in (0..<rank).map { _ in next() * extent } }
      sigma = (0..<count).map { _ in 1.5 + 2 * next() }
    }
    func value(_ p: [Double]) -> Float {
      var s = 0.0
      for (c, sg) in zip(centres, sigma) {
        var r2 = 0.0
        for d in p.indices { r2 += (p[d] - c[d]) * (p[d] - c[d]) }
        if r2 < 25 * sg * sg { s += 1000 * exp(-r2 / (2 * sg * sg)) }
      }
      return Float(s)
    }
    /// A region of `shape` whose voxel x shows the texture at origin + x (voxel units scaled by `spacing`).
    func region(_ shape: [Int], origin: [Double], spacing: [Double]) -> VolumeBuffer<Float> {
      var v = VolumeBuffer<Float>(shape: shape)
      var k = 0
      Box(shape: shape).forEachIndex { x in
        v.storage[k] = value((0..<shape.count).map { origin[$0] + Double(x[$0]) * spacing[$0] })
        k += 1
      }
      return v
    }
  }

  /// b(x) = a(x + d): b is cut `d` voxels further along every axis.
  @Test(arguments: [
    ([48, 56], [3.0, -5.0]), ([48, 56], [-7.0, 0.0]), ([48, 56], [2.4, -3.7]),
    ([16, 40, 44], [1.0, 4.0, -2.0]), ([16, 40, 44], [0.6, -2.3, 3.5]),
  ])
  func recoversKnownShifts(shape: [Int], d: [Double]) throws {
    let rank = shape.count
    let texture = Texture(rank: rank, extent: 80, count: rank == 3 ? 300 : 60, seed: 42)
    let spacing = Array(repeating: 1.0, count: rank)
    let origin = Array(repeating: 10.0, count: rank)
    let a = texture.region(shape, origin: origin, spacing: spacing)
    let b = texture.region(shape, origin: zip(origin, d).map { $0 + $1 }, spacing: spacing)
    let result = try #require(PhaseCorrelation().measure(a, b, plans: FFTPlanCache()))
    let integer = d.allSatisfy { $0 == $0.rounded() }
    if integer { #expect(result.integerShift == d.map { Int($0) }) }  // the integer shift exactly
    for k in 0..<rank {
      // Subpixel estimates within 0.1 voxel of integer shifts, 0.2 of fractional ones.
      #expect(abs(result.shift[k] - d[k]) <= (integer ? 0.1 : 0.2), "axis \(k): \(result.shift) vs \(d)")
    }
    #expect(result.correlation > 0.9)
  }

  /// Anisotropic voxels: the shift comes out in voxels of each axis.
  @Test func anisotropicVoxels() throws {
    let texture = Texture(rank: 3, extent: 90, count: 350, seed: 7)
    let spacing = [3.0, 1.0, 1.0]  // z voxels three times coarser
    let a = texture.region([12, 40, 40], origin: [5, 10, 10], spacing: spacing)
    let b = texture.region([12, 40, 40], origin: [5 + 2 * 3, 10 - 3, 10 + 5], spacing: spacing)
    let result = try #require(PhaseCorrelation().measure(a, b, plans: FFTPlanCache()))
    #expect(result.integerShift == [2, -3, 5])
  }

  @Test func respectsMaxShiftAndFlatRegions() {
    let texture = Texture(rank: 2, extent: 80, count: 60, seed: 3)
    let a = texture.region([40, 40], origin: [10, 10], spacing: [1, 1])
    let b = texture.region([40, 40], origin: [18, 10], spacing: [1, 1])
    let limited = PhaseCorrelation(maxShift: [4, 4]).measure(a, b, plans: FFTPlanCache())
    #expect(limited == nil || limited!.correlation < 0.5)
    let flat = VolumeBuffer<Float>(shape: [40, 40], repeating: 100)
    #expect(PhaseCorrelation().measure(flat, flat, plans: FFTPlanCache()) == nil)
  }
}

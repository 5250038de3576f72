import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraRegistration

@Suite struct SubpixelTests {
  /// Region `box` of `v` and the same region `shift` voxels further (an exact Fourier translate).
  static func pair(_ v: VolumeBuffer<Float>, _ box: Box, shift: [Double]) -> (VolumeBuffer<Float>, VolumeBuffer<Float>)
  {
    let whole = shift.map { $0.rounded(.down) }
    let target = box.translated(by: whole.map { Int($0) })
    let b = RealTexture.shifted(v, by: zip(shift, whole).map { $0 - $1 }, box: target)
    let a = v.extracting(box)
    return (a.reboxed(Box(shape: box.shape)), b.reboxed(Box(shape: box.shape)))
  }

  @Test func explore() throws {
    let nuclei = try RealTexture.load("nuclei_crop")
    let plans = FFTPlanCache()
    let clock = ContinuousClock()
    let t0 = clock.now
    var worst = 0.0
    for f in stride(from: 0.0, to: 1.0, by: 0.125) {
      let shift = [0.3 + f, 3 - 5 * f, -2.5 + f * 5]
      let (a, b) = Self.pair(nuclei, Box(lower: [5, 10, 40], upper: [26, 86, 61]), shift: shift)
      let t1 = clock.now
      let r = try #require(PhaseCorrelation().measure(a, b, plans: plans))
      print("measure", clock.now - t1, r.integerCorrelation ?? 0)
      let e = zip(r.shift, shift).map { $0 - $1 }
      worst = max(worst, e.map(abs).max()!)
      print(
        "shift \(shift) error \(e.map { String(format: "%.4f", $0) }) sigma \(r.uncertainty ?? []) corr \(r.correlation)"
      )
    }
    print("worst \(worst) in \(clock.now - t0)")
  }
}

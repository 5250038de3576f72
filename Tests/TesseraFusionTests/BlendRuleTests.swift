import Testing

@testable import TesseraCore
@testable import TesseraFusion

@Suite struct BlendRuleTests {
  /// Samples (value, weight) per voxel of a four-voxel slab, in view order: none (fill), two
  /// weighted samples, two negative samples, one sample.
  static let samples: [[(Float, Float)]] = [[], [(10, 0.25), (20, 0.75)], [(-6, 1), (-2, 0.5)], [(3, 0.5)]]

  /// The slab after every sample is added one by one, finished with fill 7 to Float and Int16.
  static func finished<Rule: BlendRule>(_: Rule.Type) -> (float: [Float], int16: [Int16]) {
    var value = [Float](repeating: Rule.initialValue, count: samples.count)
    var weight = [Float](repeating: 0, count: samples.count)
    for (i, voxel) in samples.enumerated() {
      for (v, w) in voxel where !Rule.isSettled(weight[i]) { Rule.add(v, weight: w, to: &value[i], &weight[i]) }
    }
    var float = [Float](repeating: .nan, count: samples.count)
    var int16 = [Int16](repeating: 99, count: samples.count)
    float.withUnsafeMutableBufferPointer {
      Rule.finish(4, value: value, weight: weight, fill: 7, into: $0.baseAddress!)
    }
    int16.withUnsafeMutableBufferPointer {
      Rule.finish(4, value: value, weight: weight, fill: 7, into: $0.baseAddress!)
    }
    return (float, int16)
  }

  @Test func linearIsTheWeightedAverage() {
    let r = Self.finished(LinearBlend.self)
    // (0.25·10 + 0.75·20) / 1, (−6 − 0.5·2) / 1.5, 0.5·3 / 0.5.
    #expect(r.float == [7, 17.5, Float(-7) / 1.5, 3])
    #expect(r.int16 == [7, 18, -5, 3])
  }

  @Test func meanIgnoresTheWeights() {
    let r = Self.finished(MeanBlend.self)
    #expect(r.float == [7, 15, -4, 3])
    #expect(r.int16 == [7, 15, -4, 3])
  }

  /// Max starts below every sample: all-negative samples give their maximum, not 0.
  @Test func maxTakesTheLargestSample() {
    let r = Self.finished(MaxBlend.self)
    #expect(r.float == [7, 20, -2, 3])
    #expect(r.int16 == [7, 20, -2, 3])
  }

  @Test func firstKeepsTheFirstSample() {
    let r = Self.finished(FirstBlend.self)
    #expect(r.float == [7, 10, -6, 3])
    #expect(r.int16 == [7, 10, -6, 3])
    #expect(!FirstBlend.isSettled(0) && FirstBlend.isSettled(1))
    #expect(![LinearBlend.isSettled(1), MeanBlend.isSettled(1), MaxBlend.isSettled(1)].contains(true))
  }

  /// Adding rows (as the translation path does) gives the same accumulator bits as adding the
  /// same samples one by one (as the affine path does), for rows covering parts of the slab.
  static func rowsMatchSamples<Rule: BlendRule>(_: Rule.Type, seed: UInt64) -> Bool {
    var rng = SeedRNG(seed)
    let count = 37
    var rowValue = [Float](repeating: Rule.initialValue, count: count)
    var rowWeight = [Float](repeating: 0, count: count)
    var oneValue = rowValue
    var oneWeight = rowWeight
    for view in 0..<4 {
      let lo = Int.random(in: 0..<count / 2, using: &rng)
      let hi = view == 0 ? count : Int.random(in: lo...count, using: &rng)
      let samples = (0..<count).map { _ in Float(Int.random(in: -3000...3000, using: &rng)) / 7 }
      let weights = (0..<count).map { _ in Float.random(in: 0.001...1, using: &rng) }
      let w0 = Float.random(in: 0.001...1, using: &rng)
      for i in lo..<hi { Rule.add(samples[i], weight: w0 * weights[i], to: &oneValue[i], &oneWeight[i]) }
      rowValue.withUnsafeMutableBufferPointer { value in
        rowWeight.withUnsafeMutableBufferPointer { weight in
          Rule.addRow(
            lo..<hi, value: value.baseAddress!, weight: weight.baseAddress!, rowWeight: w0, weights: weights
          ) { samples[$0] }
        }
      }
    }
    return rowValue.map(\.bitPattern) == oneValue.map(\.bitPattern)
      && rowWeight.map(\.bitPattern) == oneWeight.map(\.bitPattern)
  }

  @Test(arguments: [1, 2, 3] as [UInt64])
  func rowsAccumulateLikeSingleSamples(seed: UInt64) {
    #expect(Self.rowsMatchSamples(LinearBlend.self, seed: seed))
    #expect(Self.rowsMatchSamples(MeanBlend.self, seed: seed))
    #expect(Self.rowsMatchSamples(MaxBlend.self, seed: seed))
    #expect(Self.rowsMatchSamples(FirstBlend.self, seed: seed))
  }

  /// The one place where max's two forms differ (kept so output bytes stay as they were): on a
  /// tie of +0 and −0 a single sample keeps the old zero, a row takes the new one.
  @Test func maxTiesOfSignedZeros() {
    var value: Float = 0
    var weight: Float = 0
    MaxBlend.add(-0.0, weight: 1, to: &value, &weight)
    #expect(value.sign == .plus && weight == 1)
    var row: [Float] = [0]
    var rowWeight: [Float] = [0]
    MaxBlend.addRow(0..<1, value: &row, weight: &rowWeight, rowWeight: 1, weights: [1]) { _ in -0.0 }
    #expect(row[0].sign == .minus && rowWeight[0] == 1)
  }
}

import Testing

@testable import TesseraCore

/// The one block-mean kernel: against a direct mean for every rank and step, edge blocks
/// included, and the same bits however the output is cut.
@Suite struct BlockMeanTests {
  /// The mean of each output voxel's block computed directly (Double), with Tessera's rule.
  static func reference(_ v: VolumeBuffer<UInt16>, _ box: Box, _ step: [Int]) -> VolumeBuffer<UInt16> {
    var out = VolumeBuffer<UInt16>(box: box)
    box.forEachIndex { q in
      var sum = 0.0
      var count = 0.0
      Box(lower: zip(q, step).map { $0 * $1 }, upper: zip(q, step).map { ($0 + 1) * $1 }).intersection(v.box)
        .forEachIndex { p in
          sum += Double(v[p])
          count += 1
        }
      out[q] = UInt16(clamping: sum / count)
    }
    return out
  }

  static func sample(_ shape: [Int], seed: UInt64) -> VolumeBuffer<UInt16> {
    var rng = SplitMix64(seed: seed)
    var v = VolumeBuffer<UInt16>(shape: shape)
    for i in v.storage.indices { v.storage[i] = UInt16(truncatingIfNeeded: rng.next() >> 48) }
    return v
  }

  @Test(arguments: [[37], [9, 23], [5, 7, 19], [3, 4, 5, 6]])
  func matchesTheDirectMean(shape: [Int]) throws {
    let v = Self.sample(shape, seed: UInt64(shape.count))
    for s in [1, 2, 3] {
      for steps in [Array(repeating: s, count: shape.count), shape.indices.map { $0 == 0 ? 1 : s }] {
        let box = Box(shape: zip(shape, steps).map { ($0 + $1 - 1) / $1 })  // ceil: edge blocks partial
        let expected = Self.reference(v, box, steps)
        let float = BlockMean.reduce(AnyVolumeBuffer(v), to: box, step: steps).converted(to: UInt16.self)
        let double = BlockMean.reduce(AnyVolumeBuffer(v), to: box, step: steps, accumulator: .double)
          .converted(to: UInt16.self)
        #expect(double == expected, "\(shape) step \(steps)")
        // Float: the same wherever the sum is exact and the count a power of two (steps 1 and 2).
        if s <= 2 { #expect(float == expected, "\(shape) step \(steps)") }
      }
    }
  }

  /// Unsigned 8- and 16-bit data with x-steps of 2 are summed as integers (the pyramid's case):
  /// the same bits as the Double path, rows long enough for the vector loop, odd lengths and edge
  /// blocks included.
  @Test(arguments: [UInt64(1), 2, 3])
  func integerSumsMatchTheDirectMean(seed: UInt64) throws {
    var rng = SplitMix64(seed: seed)
    let shape = [3 + Int(rng.next() % 4), 5 + Int(rng.next() % 6), 64 + Int(rng.next() % 70)]
    let v = Self.sample(shape, seed: seed)
    var bytes = VolumeBuffer<UInt8>(shape: shape)
    for i in bytes.storage.indices { bytes.storage[i] = UInt8(truncatingIfNeeded: v.storage[i]) }
    for step in [[2, 2, 2], [1, 2, 2], [1, 1, 2]] {
      let box = Box(shape: zip(shape, step).map { ($0 + $1 - 1) / $1 })
      #expect(
        BlockMean.reduce(AnyVolumeBuffer(v), to: box, step: step).converted(to: UInt16.self)
          == Self.reference(v, box, step), "\(shape) step \(step)")
      let float = BlockMean.reduce(AnyVolumeBuffer(bytes), to: box, step: step)
      let double = BlockMean.reduce(AnyVolumeBuffer(bytes), to: box, step: step, accumulator: .double)
      #expect(float.converted(to: UInt8.self) == double.converted(to: UInt8.self), "\(shape) step \(step)")
    }
  }

  /// The integer path's edges: outputs past the input (0, as the float path leaves them), and
  /// blocks of exactly 256 values, the most it sums (the count a power of two, so the Double path's
  /// exact mean is the reference).
  @Test func integerSumsAtTheirEdges() throws {
    var rng = SplitMix64(seed: 7)
    var bytes = VolumeBuffer<UInt8>(shape: [2, 5, 37])
    for i in bytes.storage.indices { bytes.storage[i] = UInt8(truncatingIfNeeded: rng.next()) }
    let input = AnyVolumeBuffer(bytes)
    // One output beyond the input along x and along y (its rows lie outside: none to sum).
    let beyond = Box(shape: [1, 4, 20])
    let float = BlockMean.reduce(input, to: beyond, step: [2, 2, 2]).converted(to: UInt8.self)
    #expect(
      float == BlockMean.reduce(input, to: beyond, step: [2, 2, 2], accumulator: .double).converted(to: UInt8.self))
    #expect(float[[0, 3, 5]] == 0 && float[[0, 1, 19]] == 0)
    // 256 values of 65535 and of random data: sums up to 16,776,960, just below 2²⁴.
    var tall = Self.sample([1, 128, 40], seed: 8)
    for i in 0..<(128 * 8) { tall.storage[i % 128 * 40 + i / 128] = .max }  // x 0..<8 all 65535
    let box = Box(shape: [1, 1, 20])
    let means = BlockMean.reduce(AnyVolumeBuffer(tall), to: box, step: [1, 128, 2]).converted(to: UInt16.self)
    #expect(
      means
        == BlockMean.reduce(AnyVolumeBuffer(tall), to: box, step: [1, 128, 2], accumulator: .double)
        .converted(to: UInt16.self))
    #expect(means[[0, 0, 0]] == .max && means[[0, 0, 3]] == .max)
  }

  @Test func theSameBitsHoweverTheOutputIsCut() throws {
    let v = Self.sample([6, 50, 70], seed: 9)
    let box = Box(shape: [3, 25, 35])
    let whole = BlockMean.reduce(AnyVolumeBuffer(v), to: box, step: [2, 2, 2])
    var pieces = AnyVolumeBuffer(elementType: .uint16, box: box)
    for piece in [
      Box(lower: [0, 0, 0], upper: [3, 11, 35]), Box(lower: [0, 11, 0], upper: [3, 25, 17]),
      Box(lower: [0, 11, 17], upper: [3, 25, 35]),
    ] {
      pieces.withUnsafeMutableBytes { dst in
        BlockMean.reduce(
          AnyVolumeBuffer(v), to: piece, step: [2, 2, 2], into: dst.baseAddress!, destinationBox: box)
      }
    }
    #expect(pieces.converted(to: UInt16.self) == whole.converted(to: UInt16.self))
  }
}

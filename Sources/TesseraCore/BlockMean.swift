/// Block-mean downsampling, rank-generic: the one kernel behind the OME-Zarr pyramid, the BDV
/// writer's resolution levels and registration's downsampled overlaps.
///
/// Output voxel `q` is the mean of the input voxels `q·step + k` (0 ≤ k < step, per axis) that
/// lie in the input: an edge block averages the voxels it holds. The sum runs in the accumulator
/// type `A` (`Float` or `Double`) in one fixed order — the block's rows in C order, then x — and is
/// divided by the count, then converted to the element type with Tessera's rule (round half away
/// from zero, clamp). So every output voxel depends only on its own block, never on how the
/// output is cut into pieces. Error: with `Float`, sums of up to 2⁸ values of ≤16-bit data are
/// exact (below 2²⁴) and the quotient is correctly rounded, so for power-of-two counts the result
/// is the exactly rounded mean; `Double` is exact for counts up to 2³⁶ of such data.
public enum BlockMean {
  /// The type the sums run in.
  public enum Accumulator: Sendable {
    case float, double
  }

  /// The block means of `input` over `step` for the voxels of `box` (output coordinates: voxel
  /// `q` covers input voxels `q·step …`), as a new buffer of the input's element type.
  public static func reduce(
    _ input: AnyVolumeBuffer, to box: Box, step: [Int], accumulator: Accumulator = .float
  ) -> AnyVolumeBuffer {
    var out = AnyVolumeBuffer(elementType: input.elementType, uninitializedBox: box)
    out.withUnsafeMutableBytes { dst in
      reduce(input, to: box, step: step, into: dst.baseAddress!, destinationBox: box, accumulator: accumulator)
    }
    return out
  }

  /// ``reduce(_:to:step:accumulator:)`` writing the voxels of `box` into `destination`, a C-order
  /// array over `destinationBox` (which contains `box`) of the input's element type.
  public static func reduce(
    _ input: AnyVolumeBuffer, to box: Box, step: [Int], into destination: UnsafeMutableRawPointer,
    destinationBox: Box, accumulator: Accumulator = .float
  ) {
    // Dispatched once here, so the loops below are specialised for the accumulator (callers in
    // other modules would otherwise run them unspecialised).
    switch accumulator {
    case .float: run(input, box, step, destination, destinationBox, Float.self)
    case .double: run(input, box, step, destination, destinationBox, Double.self)
    }
  }

  static func run<A: BinaryFloatingPoint & SIMDScalar & VoxelElement>(
    _ input: AnyVolumeBuffer, _ box: Box, _ step: [Int], _ destination: UnsafeMutableRawPointer,
    _ destinationBox: Box, _: A.Type
  ) {
    let inBox = input.box
    let n = box.rank
    precondition(step.count == n && inBox.rank == n && step.allSatisfy { $0 >= 1 }, "step \(step) for rank \(n)")
    let type = input.elementType
    let size = type.byteCount
    guard !box.isEmpty else { return }
    let inStrides = VolumeBuffer<Float>.strides(for: inBox.shape)
    let outStrides = VolumeBuffer<Float>.strides(for: destinationBox.shape)
    let outLength = box.upper[n - 1] - box.lower[n - 1]
    let stepX = step[n - 1]
    // The input x-range feeding one output row.
    let x0 = box.lower[n - 1] * stepX
    let x1 = Swift.min(box.upper[n - 1] * stepX, inBox.upper[n - 1])
    let rowLength = Swift.max(0, x1 - x0)
    let first = x0 - inBox.lower[n - 1]
    precondition(first >= 0, "the input \(inBox) does not cover the blocks of \(box)")
    // Scratch for one output row: the converted input row, the sums and the counts.
    let rowIn = UnsafeMutablePointer<A>.allocate(capacity: Swift.max(1, rowLength))
    let sum = UnsafeMutablePointer<A>.allocate(capacity: outLength)
    let count = UnsafeMutablePointer<A>.allocate(capacity: outLength)
    defer {
      rowIn.deallocate()
      sum.deallocate()
      count.deallocate()
    }
    // The input rows of one block: offsets of the rows q·step + k over k in C order.
    let groupShape = Array(step.dropLast())
    let groupRows = groupShape.reduce(1, *)
    // Unsigned 8- and 16-bit data summed in Float over x-pairs, at most 256 values a block: every
    // partial sum is an integer below 2²⁴, so Float adds them exactly in any order, and summing
    // them as UInt32 first gives the same sums — the same bits, without converting every input.
    let integerPairs =
      A.self == Float.self && stepX == 2 && groupRows * stepX <= 256 && (type == .uint16 || type == .uint8)
    let integerSum = UnsafeMutablePointer<UInt32>.allocate(capacity: integerPairs ? outLength : 0)
    defer { integerSum.deallocate() }
    var offsets = [Int](repeating: 0, count: groupRows)
    var k = [Int](repeating: 0, count: Swift.max(0, n - 1))
    input.withUnsafeBytes { src in
      let base = src.baseAddress!
      offsets.withUnsafeMutableBufferPointer { offsets in
        var q = box.lower
        while true {
          var rows = 0
          for g in 0..<groupRows {
            var rest = g
            for d in Swift.stride(from: n - 2, through: 0, by: -1) {
              k[d] = rest % groupShape[d]
              rest /= groupShape[d]
            }
            var offset = 0
            var inside = true
            for d in 0..<(n - 1) {
              let i = q[d] * step[d] + k[d]
              if i < inBox.lower[d] || i >= inBox.upper[d] {
                inside = false
                break
              }
              offset += (i - inBox.lower[d]) * inStrides[d]
            }
            if inside {
              offsets[rows] = offset
              rows += 1
            }
          }
          if integerPairs {
            integerSum.update(repeating: 0, count: outLength)
            for r in 0..<rows {
              let row = base + (offsets[r] + first) * size
              if type == .uint16 {
                addPairs(row.assumingMemoryBound(to: UInt16.self), rowLength, integerSum)
              } else {
                addPairs(row.assumingMemoryBound(to: UInt8.self), rowLength, integerSum)
              }
            }
            // Output i averages the inputs 2i and 2i + 1 of each row: both for the whole pairs
            // (one divisor, so the loop vectorises; the sums are below 2²⁴, so Int32 holds them),
            // one for an odd last input, none beyond the row's end (left 0, as below).
            let pairs = rows > 0 ? Swift.min(outLength, rowLength / 2) : 0
            let divisor = A(2 * rows)
            for i in 0..<pairs { sum[i] = A(Int32(truncatingIfNeeded: integerSum[i])) / divisor }
            for i in pairs..<outLength {
              sum[i] = 2 * i < rowLength && rows > 0 ? A(integerSum[i]) / A(rows) : 0
            }
          } else {
            sum.update(repeating: 0, count: outLength)
            count.update(repeating: 0, count: outLength)
            // Every value is added to its voxel's sum in the order of the rows, then of x: the
            // same sequence of additions for any block or piece shape.
            for r in 0..<rows {
              ElementConversion.convert(
                rowLength, from: type, base + (offsets[r] + first) * size, to: A.elementType, rowIn)
              addRow(rowIn, rowLength, stepX: stepX, sum, count)
            }
            for i in 0..<outLength where count[i] > 0 { sum[i] /= count[i] }
          }
          var outOffset = 0
          for d in 0..<n { outOffset += (q[d] - destinationBox.lower[d]) * outStrides[d] }
          ElementConversion.convert(outLength, from: A.elementType, sum, to: type, destination + outOffset * size)
          var d = n - 2
          while d >= 0 {
            q[d] += 1
            if q[d] < box.upper[d] { break }
            q[d] = box.lower[d]
            d -= 1
          }
          if d < 0 { break }
        }
      }
    }
  }

  /// Adds one row of `rowLength` unsigned integers to the integer sums of the output row it feeds,
  /// two inputs per output (the last one alone when `rowLength` is odd).
  @inline(__always)
  static func addPairs<S: FixedWidthInteger & UnsignedInteger & SIMDScalar>(
    _ row: UnsafePointer<S>, _ rowLength: Int, _ sum: UnsafeMutablePointer<UInt32>
  ) {
    var i = 0
    // Sixteen output voxels at a time from 32 inputs, split into their even and odd halves.
    while 2 * i + 32 <= rowLength {
      let v = UnsafeRawPointer(row + 2 * i).loadUnaligned(as: SIMD32<S>.self)
      let pairs = SIMD16<UInt32>(truncatingIfNeeded: v.evenHalf) &+ SIMD16<UInt32>(truncatingIfNeeded: v.oddHalf)
      let sums = UnsafeRawPointer(sum + i).loadUnaligned(as: SIMD16<UInt32>.self) &+ pairs
      UnsafeMutableRawPointer(sum + i).storeBytes(of: sums, as: SIMD16<UInt32>.self)
      i += 16
    }
    while 2 * i + 1 < rowLength {
      sum[i] &+= UInt32(row[2 * i]) &+ UInt32(row[2 * i + 1])
      i += 1
    }
    if 2 * i < rowLength { sum[i] &+= UInt32(row[2 * i]) }
  }

  /// Adds one input row to the sums and counts of the output row it feeds (`stepX` inputs per
  /// output, the last one possibly fewer).
  @inline(__always)
  static func addRow<A: BinaryFloatingPoint & SIMDScalar>(
    _ rowIn: UnsafeMutablePointer<A>, _ rowLength: Int, stepX: Int, _ sum: UnsafeMutablePointer<A>,
    _ count: UnsafeMutablePointer<A>
  ) {
    switch stepX {
    case 1:
      for j in 0..<rowLength {
        sum[j] += rowIn[j]
        count[j] += 1
      }
    case 2:
      var j = 0
      var i = 0
      // Eight output voxels at a time: the even and odd halves of 16 inputs are added in the
      // same order as below, lane by lane, so the sums are the same bits.
      let twos = SIMD8<A>(repeating: 2)
      while j + 16 <= rowLength {
        let v = UnsafeRawPointer(rowIn + j).loadUnaligned(as: SIMD16<A>.self)
        var sums = UnsafeRawPointer(sum + i).loadUnaligned(as: SIMD8<A>.self)
        sums += v.evenHalf
        sums += v.oddHalf
        UnsafeMutableRawPointer(sum + i).storeBytes(of: sums, as: SIMD8<A>.self)
        let counts = UnsafeRawPointer(count + i).loadUnaligned(as: SIMD8<A>.self) + twos
        UnsafeMutableRawPointer(count + i).storeBytes(of: counts, as: SIMD8<A>.self)
        i += 8
        j += 16
      }
      while j + 1 < rowLength {
        sum[i] += rowIn[j]
        sum[i] += rowIn[j + 1]
        count[i] += 2
        i += 1
        j += 2
      }
      if j < rowLength {
        sum[i] += rowIn[j]
        count[i] += 1
      }
    default:
      for j in 0..<rowLength {
        sum[j / stepX] += rowIn[j]
        count[j / stepX] += 1
      }
    }
  }
}

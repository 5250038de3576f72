import Foundation
import TesseraCore

// The pyramid of an OME-Zarr image: level k+1 is the block mean of level k over `step` (2 on the
// axes that halve, 1 elsewhere). Two ways to build it, with identical bytes:
// - in the stream (``OMEZarrImage/PyramidStream``): each level-k block, as it is written, is
//   reduced into the in-memory level-(k+1) block above it, which is written (and reduced further)
//   once its last child is in — nothing is read back from disk;
// - from disk (``OMEZarrImage/buildPyramid(threads:)``): each level-(k+1) block reads the 2×
//   region of level k below it (a resumed run, or an array written by other means).

extension OMEZarrImage {
  /// Builds levels 1… from level 0 on disk, block by block (each block reads only the 2×-region
  /// of the level below it), `threads` blocks at a time. Blocks recorded as complete are skipped.
  public func buildPyramid(threads: Int) throws {
    let lead = spec.leadingAxes.count
    for level in 1..<max(1, spec.levels) {
      let source = levels[level - 1]
      let target = levels[level]
      let fullStep = Array(repeating: 1, count: lead) + spec.step(toLevel: level)
      let done = completedAtOpen[level]
      let blocks = target.grid.allChunks.filter { !done.contains(target.grid.linearIndex(ofChunk: $0)) }
      try Parallel.forEach(blocks.count, threads: threads) { i in
        // A stop request ends the build between blocks (each written block is logged: --resume).
        try Interruption.check(
          "pyramid level \(level) is partly written; run the same command with --resume (instead of --overwrite) "
            + "to finish")
        let block = blocks[i]
        let box = target.grid.box(ofChunk: block)
        let sourceBox = Box(
          lower: zip(box.lower, fullStep).map { $0 * $1 },
          upper: zip(box.upper, fullStep).map { $0 * $1 }
        ).intersection(source.grid.bounds)
        let input = try source.read(sourceBox)
        try self.writeBlock(level: level, block, Self.downsample(input, to: box, step: fullStep))
      }
    }
  }

  /// Block mean over `step` (per axis 1 or 2): output voxel `q` averages the input voxels
  /// `q·step + k` (0 ≤ k < step) that exist in `input` (edge blocks average fewer), summed in
  /// Float in a fixed order (the rows of the group slowest axis first, then x) and divided by the
  /// count, then converted with Tessera's rule. Sums of at most 8 values of ≤16-bit data are exact
  /// in Float and the counts are powers of two, so for those types the result is the exactly
  /// rounded mean. Each output voxel depends only on its own group, so results do not depend on
  /// how the level is cut into blocks.
  static func downsample(_ input: AnyVolumeBuffer, to box: Box, step: [Int]) -> AnyVolumeBuffer {
    var out = AnyVolumeBuffer(elementType: input.elementType, uninitializedBox: box)
    out.withUnsafeMutableBytes { dst in
      downsample(input, to: box, step: step, into: dst.baseAddress!, destinationBox: box)
    }
    return out
  }

  /// ``downsample(_:to:step:)`` writing the voxels of `box` into `destination`, a C-order array
  /// over `destinationBox` (which contains `box`) of the input's element type.
  static func downsample(
    _ input: AnyVolumeBuffer, to box: Box, step: [Int], into destination: UnsafeMutableRawPointer,
    destinationBox: Box
  ) {
    let inBox = input.box
    let n = box.rank
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
    // Scratch for one output row: the converted input row, the sums and the counts.
    let rowIn = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, rowLength))
    let sum = UnsafeMutablePointer<Float>.allocate(capacity: outLength)
    let count = UnsafeMutablePointer<Float>.allocate(capacity: outLength)
    defer {
      rowIn.deallocate()
      sum.deallocate()
      count.deallocate()
    }
    // The input rows of one group: offsets of the rows q·step + k over k in C order.
    let groupShape = Array(step.dropLast())
    let groupRows = groupShape.reduce(1, *)
    var offsets = [Int](repeating: 0, count: groupRows)
    var k = [Int](repeating: 0, count: n - 1)
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
          sum.update(repeating: 0, count: outLength)
          count.update(repeating: 0, count: outLength)
          // Every value is added to its voxel's sum in the order of the rows, then of x: the same
          // sequence of Float additions for any block or piece shape.
          for r in 0..<rows {
            ElementConversion.convert(
              rowLength, from: type, base + (offsets[r] + first) * size, to: .float32, rowIn)
            if stepX == 2 {
              var j = 0
              var i = 0
              // Eight output voxels at a time: the even and odd halves of 16 inputs are added in
              // the same order as below, lane by lane, so the sums are the same bits.
              let twos = SIMD8<Float>(repeating: 2)
              while j + 16 <= rowLength {
                let v = UnsafeRawPointer(rowIn + j).loadUnaligned(as: SIMD16<Float>.self)
                var sums = UnsafeRawPointer(sum + i).loadUnaligned(as: SIMD8<Float>.self)
                sums += v.evenHalf
                sums += v.oddHalf
                UnsafeMutableRawPointer(sum + i).storeBytes(of: sums, as: SIMD8<Float>.self)
                let counts = UnsafeRawPointer(count + i).loadUnaligned(as: SIMD8<Float>.self) + twos
                UnsafeMutableRawPointer(count + i).storeBytes(of: counts, as: SIMD8<Float>.self)
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
            } else {
              for j in 0..<rowLength {
                sum[j] += rowIn[j]
                count[j] += 1
              }
            }
          }
          for i in 0..<outLength where count[i] > 0 { sum[i] /= count[i] }
          var outOffset = 0
          for d in 0..<n { outOffset += (q[d] - destinationBox.lower[d]) * outStrides[d] }
          ElementConversion.convert(outLength, from: .float32, sum, to: type, destination + outOffset * size)
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

  /// An in-stream pyramid for the level-0 blocks `blocks` (full block indices, leading axes
  /// first), which must all be written in this run; nil when the image has one level, when blocks
  /// of it are already complete (a resumed run builds the rest from disk), or when a block
  /// boundary would split a 2× group (an odd chunk or inner-chunk extent on an axis that halves).
  public func pyramidStream(for blocks: [[Int]]) -> PyramidStream? {
    guard spec.canStreamPyramid, completedAtOpen.allSatisfy(\.isEmpty) else { return nil }
    return PyramidStream(image: self, blocks: blocks)
  }

  /// The order in which to write level-0 blocks so that an in-stream pyramid holds few partial
  /// blocks: sorted by their ancestor at the coarsest level, then at the next finer level, and so
  /// on down to the block itself, so the children of every pyramid block are written one after
  /// another. (Also good input locality: neighbours stay together.) Returns positions in `blocks`.
  public func pyramidOrder(of blocks: [[Int]]) -> [Int] {
    let steps = spec.fullSteps
    let keys: [[Int]] = blocks.map { b in
      var chain = [b]
      var a = b
      for level in Swift.stride(from: 1, to: spec.levels, by: 1) {
        a = zip(a, steps[level]).map { $0 / $1 }
        chain.append(a)
      }
      return chain.reversed().flatMap { $0 }
    }
    return blocks.indices.sorted { i, j in
      keys[i].lexicographicallyPrecedes(keys[j]) || (keys[i] == keys[j] && i < j)
    }
  }

  /// Builds levels 1… while level 0 is written: ``add(level:block:piece:)`` hands it each piece of
  /// a block as it is encoded, ``finished(level:block:)`` says the block is stored. Level-(k+1)
  /// blocks are held in memory (in the output type) only while some of their children are
  /// still to come; the last child's thread writes the parent and passes it up. Thread-safe:
  /// pieces of different blocks reduce in parallel into disjoint parts of their parents.
  ///
  /// Memory: with the blocks in ``OMEZarrImage/pyramidOrder(of:)`` and T threads taking them in
  /// order, at most T + k blocks of level k are open at once (every open parent has a running
  /// child, plus the one being entered); ``OMEZarrImageSpec/pyramidStreamBytes(for:threads:)`` states that bound and
  /// ``peakBytes`` what was held.
  public final class PyramidStream: @unchecked Sendable {  // `open`, `held` and `peak` are guarded by `lock`
    let image: OMEZarrImage
    /// Per level k ≥ 1: children still to come for each block (linear index), for blocks with any.
    private var remaining: [[Int: Int]]
    private var open: [[Int: Parent]]
    private var held = 0
    private var peak = 0
    private let lock = NSLock()
    let fullSteps: [[Int]]

    /// An open parent block: its voxels, C order over `box`, written by its children on disjoint
    /// regions from several threads (hence raw memory, not a copy-on-write buffer).
    final class Parent: @unchecked Sendable {
      let box: Box
      let bytes: UnsafeMutableRawBufferPointer
      init(box: Box, byteCount: Int) {
        self.box = box
        bytes = .allocate(byteCount: byteCount, alignment: 64)
      }
      deinit { bytes.deallocate() }
    }

    init(image: OMEZarrImage, blocks: [[Int]]) {
      self.image = image
      let spec = image.spec
      fullSteps = spec.fullSteps
      remaining = spec.pyramidChildren(of: blocks)
      open = Array(repeating: [:], count: spec.levels)
    }

    /// Most bytes the open parents held at once.
    public var peakBytes: Int { lock.withLock { peak } }

    /// Reduces `piece` (a part of level-`level` block `block`, as stored) into its parent.
    public func add(level: Int, block: [Int], piece: AnyVolumeBuffer) {
      guard level + 1 < image.spec.levels else { return }
      let step = fullSteps[level + 1]
      let parentIndex = zip(block, step).map { $0 / $1 }
      let parent = parent(level: level + 1, parentIndex)
      let box = Box(
        lower: zip(piece.box.lower, step).map { $0 / $1 },
        upper: zip(piece.box.upper, step).map { ($0 + $1 - 1) / $1 })
      OMEZarrImage.downsample(piece, to: box, step: step, into: parent.bytes.baseAddress!, destinationBox: parent.box)
    }

    /// The open parent block, made (all fill) on first use. The block is allocated and filled
    /// outside the lock (a shard can be large); if another thread opened it meanwhile, that one
    /// is used.
    private func parent(level: Int, _ index: [Int]) -> Parent {
      let grid = image.levels[level].grid
      let linear = grid.linearIndex(ofChunk: index)
      if let p = lock.withLock({ open[level][linear] }) { return p }
      let box = grid.box(ofChunk: index)
      let fill = image.levels[level].fillBytes
      let made = Parent(box: box, byteCount: box.volume * fill.count)
      if fill.allSatisfy({ $0 == 0 }) {
        made.bytes.initializeMemory(as: UInt8.self, repeating: 0)
      } else {
        // The fill pattern doubled into place.
        fill.withUnsafeBytes { made.bytes.copyMemory(from: $0) }
        var filled = fill.count
        while filled < made.bytes.count {
          let n = Swift.min(filled, made.bytes.count - filled)
          (made.bytes.baseAddress! + filled).copyMemory(from: made.bytes.baseAddress!, byteCount: n)
          filled += n
        }
      }
      return lock.withLock {
        if let p = open[level][linear] { return p }
        open[level][linear] = made
        held += made.bytes.count
        peak = max(peak, held)
        return made
      }
    }

    /// Level-`level` block `block` is stored (and all its pieces were added): if it was its
    /// parent's last child, writes the parent and passes it on up.
    public func finished(level: Int, block: [Int]) throws {
      guard level + 1 < image.spec.levels else { return }
      let parentLevel = level + 1
      let parentIndex = zip(block, fullSteps[parentLevel]).map { $0 / $1 }
      let grid = image.levels[parentLevel].grid
      let linear = grid.linearIndex(ofChunk: parentIndex)
      let (complete, opened): (Bool, Parent?) = lock.withLock {
        guard let left = remaining[parentLevel][linear] else {
          preconditionFailure("pyramid block \(parentIndex) of level \(parentLevel) was not expected")
        }
        if left > 1 {
          remaining[parentLevel][linear] = left - 1
          return (false, nil)
        }
        remaining[parentLevel][linear] = nil
        // A parent no piece reached (its children were all fill) was never opened.
        return (true, open[parentLevel].removeValue(forKey: linear))
      }
      guard complete else { return }
      guard let parentBlock = opened else {
        // Every child was fill: so is the parent. Nothing to store; pass "done" upwards.
        try image.writeBlock(level: parentLevel, parentIndex) { _ in nil }
        try finished(level: parentLevel, block: parentIndex)
        return
      }
      defer { lock.withLock { held -= parentBlock.bytes.count } }
      let type = image.spec.dataType
      try image.writeBlock(level: parentLevel, parentIndex) { box in
        var piece = AnyVolumeBuffer(elementType: type, uninitializedBox: box)
        piece.withUnsafeMutableBytes { dst in
          RawCopy.copy(
            elementSize: type.byteCount, from: parentBlock.bytes.baseAddress!, sourceBox: parentBlock.box,
            to: dst.baseAddress!, destinationBox: box)
        }
        add(level: parentLevel, block: parentIndex, piece: piece)
        return piece
      }
      try finished(level: parentLevel, block: parentIndex)
    }

    /// True when every expected block has been written.
    public var isComplete: Bool { lock.withLock { remaining.allSatisfy(\.isEmpty) && open.allSatisfy(\.isEmpty) } }
  }
}

extension OMEZarrImageSpec {
  /// The block-mean step from level `level − 1` to `level`, spatial axes (all ones for level 0).
  func step(toLevel level: Int) -> [Int] {
    let factors = levelFactors
    guard level > 0 else { return Array(repeating: 1, count: spatialRank) }
    return zip(factors[level], factors[level - 1]).map { $0 / $1 }
  }

  /// ``step(toLevel:)`` for every level, with the leading axes' 1s.
  var fullSteps: [[Int]] { (0..<levels).map { leadingOnes() + step(toLevel: $0) } }

  /// The grid of stored blocks (chunks or shards) of each level.
  var blockGrids: [ChunkGrid] {
    (0..<levels).map {
      try! ChunkGrid(shape: arrayShape(level: $0), chunkShape: leadingOnes() + (shardShape ?? chunkShape))
    }
  }

  /// True if the pyramid can be built in the stream: more than one level, and no piece (chunk, or
  /// inner chunk of a shard) boundary splits a 2× group, i.e. pieces are even along every axis
  /// that halves, unless one piece spans the level there.
  public var canStreamPyramid: Bool {
    guard levels > 1 else { return false }
    for level in 1..<levels {
      let step = step(toLevel: level)
      let below = levelShapes[level - 1]
      for d in 0..<spatialRank where step[d] == 2 && chunkShape[d] % 2 == 1 && below[d] > chunkShape[d] {
        return false
      }
    }
    return true
  }

  /// Per level k ≥ 1, for each block (linear index) above any of the level-0 `blocks`, how many
  /// of its children at level k − 1 are themselves such blocks (level 0: in `blocks`).
  func pyramidChildren(of blocks: [[Int]]) -> [[Int: Int]] {
    let grids = blockGrids
    let steps = fullSteps
    var remaining = Array(repeating: [Int: Int](), count: levels)
    var children = Set(blocks.map { grids[0].linearIndex(ofChunk: $0) })
    for level in Swift.stride(from: 1, to: levels, by: 1) {
      for c in children {
        let parent = zip(grids[level - 1].chunkIndex(linear: c), steps[level]).map { $0 / $1 }
        remaining[level][grids[level].linearIndex(ofChunk: parent), default: 0] += 1
      }
      children = Set(remaining[level].keys)
    }
    return remaining
  }

  /// The most bytes an in-stream pyramid over the level-0 `blocks` holds with `threads` writers
  /// taking them in ``OMEZarrImage/pyramidOrder(of:)``: at most T + k open blocks at level k (each
  /// open block has a running child, plus the one being entered), each of one block's bytes.
  public func pyramidStreamBytes(for blocks: [[Int]], threads: Int) -> Int {
    guard canStreamPyramid else { return 0 }
    let counts = pyramidChildren(of: blocks)
    let grids = blockGrids
    var total = 0
    for level in 1..<levels {
      let grid = grids[level]
      let blockBytes =
        grid.fullBox(ofChunk: Array(repeating: 0, count: grid.rank)).intersection(grid.bounds).volume
        * dataType.byteCount
      total += Swift.min(counts[level].count, Swift.max(1, threads) + level) * blockBytes
    }
    return total
  }
}

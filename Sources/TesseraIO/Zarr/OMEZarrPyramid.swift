import Foundation
import TesseraCore

// The pyramid of an OME-Zarr image: level k+1 is the block mean (``BlockMean``) of level k over `step` (2 on the
// axes that halve, 1 elsewhere). Two ways to build it, with identical bytes:
// - in the stream (``OMEZarrImage/PyramidStream``): each level-k block, as it is written, is
//   reduced into the in-memory level-(k+1) block above it, which is written (and reduced further)
//   once its last child is in — nothing is read back from disk;
// - from disk (``OMEZarrImage/buildPyramid(threads:)``): each level-(k+1) block reads the 2×
//   region of level k below it (a resumed run, or an array written by other means).

extension OMEZarrImage {
  /// Builds levels 1… from level 0 on disk, block by block (each block reads only the 2×-region
  /// of the level below it), `threads` blocks at a time. Blocks recorded as complete are skipped:
  /// those whose file has the recorded size, or with `checksums` (a resumed run, which repairs
  /// what was damaged) whose file matches its record exactly.
  public func buildPyramid(threads: Int, checksums: Bool = false) throws {
    let lead = spec.leadingAxes.count
    for level in 1..<max(1, spec.levels) {
      let source = levels[level - 1]
      let target = levels[level]
      let fullStep = Array(repeating: 1, count: lead) + spec.step(toLevel: level)
      let all = target.grid.allChunks
      let kept = Locked([Bool](repeating: false, count: all.count))
      try Parallel.forEach(all.count, threads: threads) { i in
        let b = target.grid.linearIndex(ofChunk: all[i])
        let ok = checksums ? self.isIntact(level: level, block: b) : self.isComplete(level: level, block: b)
        kept.withLock { $0[i] = ok }
      }
      let skip = kept.withLock { $0 }
      let blocks = all.indices.filter { !skip[$0] }.map { all[$0] }
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
        try self.writeBlock(level: level, block, BlockMean.reduce(input, to: box, step: fullStep))
      }
    }
  }

  /// An in-stream pyramid of levels 1 … `top` (default: all) for the level-0 blocks `blocks`
  /// (full block indices, leading axes first), which must all be written in this run and must
  /// hold every planned level-0 block below each level-`top` block above them (a part's share is
  /// whole level-`top` blocks); nil when the image has one level or `top` is 0, or when a block
  /// boundary would split a 2× group (an odd chunk or inner-chunk extent on an axis that halves).
  /// The levels above `top` are built from disk once every part is done (``finalize(threads:)``).
  public func pyramidStream(for blocks: [[Int]], top: Int? = nil) -> PyramidStream? {
    let top = min(top ?? spec.levels - 1, spec.levels - 1)
    guard spec.canStreamPyramid, top > 0 else { return nil }
    return PyramidStream(image: self, blocks: blocks, top: top)
  }

  /// The order in which to write level-0 blocks so that an in-stream pyramid holds few partial
  /// blocks: sorted by their ancestor at the coarsest level, then at the next finer level, and so
  /// on down to the block itself, so the children of every pyramid block are written one after
  /// another. (Also good input locality: neighbours stay together.) Returns positions in `blocks`.
  public func pyramidOrder(of blocks: [[Int]]) -> [Int] {
    let keys: [[Int]] = blocks.map { spec.ancestorChain(of: $0).flatMap { $0 } }
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
    /// The highest level built.
    let top: Int

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

    init(image: OMEZarrImage, blocks: [[Int]], top: Int) {
      self.image = image
      self.top = top
      let spec = image.spec
      fullSteps = spec.fullSteps
      remaining = Array(spec.pyramidChildren(of: blocks).prefix(top + 1))
      open = Array(repeating: [:], count: spec.levels)
    }

    /// Most bytes the open parents held at once.
    public var peakBytes: Int { lock.withLock { peak } }

    /// Reduces `piece` (a part of level-`level` block `block`, as stored) into its parent.
    public func add(level: Int, block: [Int], piece: AnyVolumeBuffer) {
      guard level < top else { return }
      let step = fullSteps[level + 1]
      let parentIndex = zip(block, step).map { $0 / $1 }
      let parent = parent(level: level + 1, parentIndex)
      let box = Box(
        lower: zip(piece.box.lower, step).map { $0 / $1 },
        upper: zip(piece.box.upper, step).map { ($0 + $1 - 1) / $1 })
      BlockMean.reduce(piece, to: box, step: step, into: parent.bytes.baseAddress!, destinationBox: parent.box)
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
      guard level < top else { return }
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

  /// The number of stored blocks of each level.
  var blockCounts: [Int] { blockGrids.map(\.chunkCount) }

  /// Block `block`'s ancestors, coarsest level first, down to the block itself (full indices,
  /// leading axes first): sorting blocks by this chain gives the pyramid order.
  func ancestorChain(of block: [Int]) -> [[Int]] {
    let steps = fullSteps
    var chain = [block]
    var a = block
    for level in Swift.stride(from: 1, to: levels, by: 1) {
      a = zip(a, steps[level]).map { $0 / $1 }
      chain.append(a)
    }
    return chain.reversed()
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

import Foundation

/// Reads view regions through a byte-budgeted cache of aligned view blocks.
///
/// Each chunked view is cut into a regular grid of blocks (its storage chunks, so a block read
/// decodes whole chunks once). A request for a region fetches the blocks it meets — from the
/// cache, or from the view's reader — and assembles the region in the view's element type.
/// Neighbouring output chunks share input blocks, so each block is usually decoded once. When the
/// cached bytes exceed the budget, the least recently used blocks are dropped. Two threads
/// needing the same missing block wait for one read instead of reading twice. Views without
/// storage chunks (contiguous storage: any box costs the same to read) bypass the cache and read
/// each region directly.
public final class ViewBlockCache: @unchecked Sendable {
  /// How one view is read.
  public struct Source: Sendable {
    public var reader: any ViewReader
    public var shape: [Int]
    public var elementType: ElementType
    /// Block shape for this view (e.g. its HDF5 chunk shape), or nil to read regions directly.
    public var blockShape: [Int]?

    public init(reader: any ViewReader, shape: [Int], elementType: ElementType, blockShape: [Int]?) {
      self.reader = reader
      self.shape = shape
      self.elementType = elementType
      self.blockShape = blockShape
    }
  }

  /// Cache counters.
  public struct Statistics: Sendable {
    public var hits = 0
    public var misses = 0
    /// Bytes read from views (decoded).
    public var bytesRead = 0
    /// Largest number of bytes held at once.
    public var peakBytes = 0
  }

  private enum Entry {
    case loading
    case ready(AnyVolumeBuffer, bytes: Int, lastUse: Int)
  }

  private struct Key: Hashable {
    var view: Int
    var block: Int
  }

  let sources: [Int: Source]
  let grids: [Int: ChunkGrid]
  /// Bytes the cache may hold.
  public let budget: Int
  private let condition = NSCondition()
  private var entries: [Key: Entry] = [:]
  private var held = 0
  private var tick = 0
  private var stats = Statistics()
  /// Reads still to come per block, when the caller said which reads it will make
  /// (``expect(view:box:)``): a block is dropped as soon as its last expected read has copied it.
  private var uses: [Key: Int] = [:]

  /// - Parameter sources: view index → how to read it.
  public init(sources: [Int: Source], budget: Int) {
    self.sources = sources
    self.budget = max(0, budget)
    var grids: [Int: ChunkGrid] = [:]
    for (i, s) in sources {
      if let block = s.blockShape { grids[i] = try! ChunkGrid(shape: s.shape, chunkShape: block) }
    }
    self.grids = grids
  }

  public var statistics: Statistics { condition.withLock { stats } }

  /// Announces a read of `box` of view `view` that will come: each block it meets is dropped as
  /// soon as its last announced read has copied it (its memory goes back for the next blocks). A
  /// block with reads still to come can still be evicted, least recently used first, when the
  /// budget is tight (it is then decoded again). Every read of an announced block counts as one of
  /// its reads, so a caller announces all of its reads or none. Blocks never announced follow the
  /// least-recently-used order alone. Announcing changes what is kept, never what is read.
  public func expect(view: Int, box: Box) {
    guard let grid = grids[view] else { return }
    condition.withLock {
      for block in grid.chunks(intersecting: box) {
        uses[Key(view: view, block: grid.linearIndex(ofChunk: block)), default: 0] += 1
      }
    }
  }

  /// Element type of view `view`'s voxels as ``read(view:box:into:)`` delivers them.
  public func elementType(view: Int) -> ElementType {
    guard let source = sources[view] else { preconditionFailure("unknown view \(view)") }
    return source.elementType
  }

  /// Writes the voxels of `box` (inside the view) of view `view` into `out`: C order over `box`, in
  /// the view's element type.
  public func read(view: Int, box: Box, into out: UnsafeMutableRawBufferPointer) throws {
    guard let source = sources[view] else { preconditionFailure("unknown view \(view)") }
    precondition(out.count == box.volume * source.elementType.byteCount, "\(out.count) bytes for box \(box)")
    guard let grid = grids[view] else {
      try source.reader.read(box, level: 0, into: out)
      condition.withLock { stats.bytesRead += out.count }
      return
    }
    // Every voxel of `box` lies in exactly one block, so the blocks overwrite it all (in any
    // order). Blocks another thread is loading come last: this thread first copies and loads
    // the others instead of waiting.
    var deferred: [Key] = []
    for block in grid.chunks(intersecting: box) {
      let key = Key(view: view, block: grid.linearIndex(ofChunk: block))
      guard let data = try fetch(key, grid: grid, source: source, wait: false) else {
        deferred.append(key)
        continue
      }
      copy(data, key, into: out, box: box, source: source)
    }
    for key in deferred {
      copy(try fetch(key, grid: grid, source: source, wait: true)!, key, into: out, box: box, source: source)
    }
  }

  /// Copies `data` (block `key`) into the part of `out` (over `box`) it covers; one announced
  /// read of the block done.
  private func copy(
    _ data: AnyVolumeBuffer, _ key: Key, into out: UnsafeMutableRawBufferPointer, box: Box, source: Source
  ) {
    let size = source.elementType.byteCount
    precondition(data.elementType == source.elementType, "view \(key.view) read as \(data.elementType)")
    data.withUnsafeBytes { src in
      RawCopy.copy(
        elementSize: size, from: src.baseAddress!, sourceBox: data.box, to: out.baseAddress!, destinationBox: box)
    }
    used(key)
  }

  /// The block `key`: cached, or read now; while another thread reads it, nil unless `wait`.
  private func fetch(_ key: Key, grid: ChunkGrid, source: Source, wait: Bool) throws -> AnyVolumeBuffer? {
    condition.lock()
    while true {
      switch entries[key] {
      case .ready(let data, let bytes, _):
        tick += 1
        entries[key] = .ready(data, bytes: bytes, lastUse: tick)
        stats.hits += 1
        condition.unlock()
        return data
      case .loading:
        guard wait else {
          condition.unlock()
          return nil
        }
        condition.wait()
      case nil:
        entries[key] = .loading
        stats.misses += 1
        condition.unlock()
        let data: AnyVolumeBuffer
        do {
          data = try source.reader.read(grid.box(ofChunk: grid.chunkIndex(linear: key.block)), level: 0)
        } catch {
          condition.withLock {
            entries[key] = nil
            condition.broadcast()
          }
          throw error
        }
        let bytes = data.box.volume * data.elementType.byteCount
        condition.withLock {
          tick += 1
          entries[key] = .ready(data, bytes: bytes, lastUse: tick)
          held += bytes
          stats.bytesRead += bytes
          stats.peakBytes = max(stats.peakBytes, held)
          evict(keeping: key)
          condition.broadcast()
        }
        return data
      }
    }
  }

  /// One announced read of `key` is done: at the last, the block is dropped.
  private func used(_ key: Key) {
    condition.withLock {
      guard let left = uses[key] else { return }
      if left > 1 {
        uses[key] = left - 1
        return
      }
      uses[key] = nil
      if case .ready(_, let bytes, _) = entries[key] {
        entries[key] = nil
        held -= bytes
      }
    }
  }

  /// Drops least recently used blocks until within budget (call with the lock held).
  private func evict(keeping key: Key) {
    guard held > budget else { return }
    let ready = entries.compactMap { k, e -> (Key, Int, Int)? in
      if case .ready(_, let bytes, let lastUse) = e, k != key { return (k, bytes, lastUse) }
      return nil
    }.sorted { $0.2 < $1.2 }
    for (k, bytes, _) in ready where held > budget {
      entries[k] = nil
      held -= bytes
    }
  }
}

extension ViewBlockCache {
  /// View `view` read through this cache: a reader of its full-resolution level.
  public func reader(view: Int) -> CachedViewReader { CachedViewReader(cache: self, view: view) }

  /// The cache block shape for a view stored in chunks of `chunk`: whole chunks, at least
  /// `minimum` voxels per axis, then grown along the last axis, the one before, … in turn
  /// (doubling) until a block holds `minimumBytes` of `elementSize`-byte voxels; never beyond the
  /// view's `shape`. Small storage chunks (BigDataViewer's 4×32×32 or 16×16×16 blocks of 8 KiB)
  /// are thus read many at a time, one coalesced read per run of neighbouring chunks, and a cache
  /// entry costs the same bookkeeping whatever the chunk size.
  public static func blockShape(
    chunk: [Int], shape: [Int], minimum: [Int], elementSize: Int = 1, minimumBytes: Int = 0
  ) -> [Int] {
    let rank = shape.count
    var block = (0..<rank).map { d in
      let c = max(1, chunk[d])
      return min(shape[d], c * max(1, (minimum[d] + c - 1) / c))
    }
    var axis = rank - 1
    var stuck = 0
    while block.reduce(elementSize, *) < minimumBytes, stuck < rank {
      let grown = min(shape[axis], block[axis] * 2)
      stuck = grown == block[axis] ? stuck + 1 : 0
      block[axis] = grown
      axis = axis == 0 ? rank - 1 : axis - 1
    }
    return block
  }
}

/// A view's full-resolution level read through a ``ViewBlockCache``.
public struct CachedViewReader: ViewReader {
  public let cache: ViewBlockCache
  public let view: Int

  public func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer {
    precondition(level == 0, "a cached view reader reads level 0 only")
    var out = AnyVolumeBuffer(elementType: cache.elementType(view: view), uninitializedBox: box)
    try out.withUnsafeMutableBytes { try cache.read(view: view, box: box, into: $0) }
    return out
  }

  public func read(_ box: Box, level: Int, into output: UnsafeMutableRawBufferPointer) throws {
    precondition(level == 0, "a cached view reader reads level 0 only")
    try cache.read(view: view, box: box, into: output)
  }
}

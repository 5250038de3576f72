import Foundation
import TesseraCore

/// Reads view regions through a byte-budgeted cache of aligned view blocks.
///
/// Each view is cut into a regular grid of blocks (ideally its storage chunks, so a block read
/// decodes whole chunks once). A request for a region fetches the blocks it meets — from the
/// cache, or from the view's reader — and assembles the region as Float. Neighbouring output
/// chunks share input blocks, so each block is usually decoded once. When the cached bytes exceed
/// the budget, the least recently used blocks are dropped. Two threads needing the same missing
/// block wait for one read instead of reading twice.
public final class ViewBlockCache: @unchecked Sendable {
  /// How one view is read.
  public struct Source: Sendable {
    public var reader: any ViewReader
    public var shape: [Int]
    public var elementType: ElementType
    /// Block shape for this view (e.g. its HDF5 chunk shape).
    public var blockShape: [Int]

    public init(reader: any ViewReader, shape: [Int], elementType: ElementType, blockShape: [Int]) {
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

  /// - Parameter sources: view index → how to read it.
  public init(sources: [Int: Source], budget: Int) {
    self.sources = sources
    self.budget = max(0, budget)
    var grids: [Int: ChunkGrid] = [:]
    for (i, s) in sources { grids[i] = try! ChunkGrid(shape: s.shape, chunkShape: s.blockShape) }
    self.grids = grids
  }

  public var statistics: Statistics { condition.withLock { stats } }

  /// The voxels of `box` (inside the view) of view `view`, as Float.
  public func read(view: Int, box: Box) throws -> VolumeBuffer<Float> {
    guard let grid = grids[view], let source = sources[view] else { preconditionFailure("unknown view \(view)") }
    // Every voxel of `box` lies in exactly one block, so the blocks overwrite it all.
    var out = VolumeBuffer<Float>(uninitializedBox: box)
    for block in grid.chunks(intersecting: box) {
      let data = try fetch(Key(view: view, block: grid.linearIndex(ofChunk: block)), grid: grid, source: source)
      out.withUnsafeMutableStorage { dst in
        data.withUnsafeBytes { src in
          RawCopy.forEachRow(of: data.box.intersection(box), in: data.box, and: box) { so, dO, length in
            ElementConversion.convert(
              length, from: data.elementType, src.baseAddress! + so * data.elementType.byteCount, to: .float32,
              dst.baseAddress! + dO * 4)
          }
        }
      }
    }
    return out
  }

  private func fetch(_ key: Key, grid: ChunkGrid, source: Source) throws -> AnyVolumeBuffer {
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

extension VolumeBuffer {
  /// Calls `body` with the storage as mutable raw bytes.
  mutating func withUnsafeMutableStorage<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    try storage.withUnsafeMutableBytes(body)
  }
}

import TesseraCore

extension OMEZarrImageSpec {
  /// How level-0 blocks are split among the parts of a multi-process fusion.
  public struct Shares: Sendable {
    /// Per part, positions in the blocks given, in the order to write them (pyramid order).
    public var parts: [[Int]]
    /// The pyramid level whose blocks are the units of the split: each part holds every planned
    /// level-0 block below its level-`top` blocks, so it builds levels 1 … `top` in its own
    /// stream; the levels above are built at finalize. 0: the units are level-0 blocks.
    public var top: Int
    /// Number of units (level-`top` blocks with planned blocks below them).
    public var units: Int
    /// Predicted work of each part.
    public var work: [Double]

    /// Largest part's predicted work over the mean (1 is perfect balance).
    public var imbalance: Double {
      let mean = work.reduce(0, +) / Double(max(1, work.count))
      return mean > 0 ? (work.max() ?? 0) / mean : 1
    }
  }

  /// Splits the level-0 `blocks` (full indices, leading axes first) of predicted `work` each into
  /// `count` parts. The blocks are taken in pyramid order (``OMEZarrImage/pyramidOrder(of:)``:
  /// neighbours together, so a part reads a compact region of the inputs), grouped into units
  /// (the blocks below one pyramid block of some level) and cut into contiguous runs of nearly
  /// equal work (``Part/contiguousShares(work:count:)``: every part within one unit's work of the
  /// mean). The unit level is the highest whose split keeps the largest part's work within
  /// `maxImbalance` of the mean (when the pyramid can be built in the stream; else level 0, single
  /// blocks): the higher it is, the more of the pyramid each part builds in its own stream. The
  /// same inputs give the same split in every process.
  public func shares(of blocks: [[Int]], work: [Double], count: Int, maxImbalance: Double = 1.05) -> Shares {
    precondition(blocks.count == work.count && count >= 1)
    // Ancestor chains, coarsest first: chains[i][k] is block i's ancestor at level levels−1−k.
    let chains = blocks.map(ancestorChain(of:))
    let order = blocks.indices.sorted { i, j in
      let (a, b) = (chains[i].flatMap { $0 }, chains[j].flatMap { $0 })
      return a.lexicographicallyPrecedes(b) || (a == b && i < j)
    }
    /// The split with units at level `top`.
    func split(top: Int) -> Shares {
      // Units: runs of the order with one ancestor at `top`.
      var unitStarts: [Int] = []
      var unitWork: [Double] = []
      var previous: [Int]?
      for (k, i) in order.enumerated() {
        let key = chains[i][levels - 1 - top]
        if key != previous {
          unitStarts.append(k)
          unitWork.append(0)
          previous = key
        }
        unitWork[unitWork.count - 1] += work[i]
      }
      unitStarts.append(order.count)
      let ranges = Part.contiguousShares(work: unitWork, count: count)
      let parts = ranges.map { r in
        r.isEmpty ? [] : Array(order[unitStarts[r.lowerBound]..<unitStarts[r.upperBound]])
      }
      return Shares(parts: parts, top: top, units: unitWork.count, work: ranges.map { unitWork[$0].reduce(0, +) })
    }
    if count == 1 { return split(top: levels - 1) }
    if canStreamPyramid {
      for top in Swift.stride(from: levels - 1, to: 0, by: -1) {
        let candidate = split(top: top)
        if candidate.imbalance <= maxImbalance { return candidate }
      }
    }
    return split(top: 0)
  }
}

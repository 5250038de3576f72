import Foundation
import TesseraCore

/// Options of `refine-positions`.
public struct RegistrationOptions: Sendable {
  /// Channel whose views are registered; nil averages all channels of a tile.
  public var channel: Int?
  /// Largest correction per axis, voxels (of the first tile's views).
  public var maxShift: [Double]
  /// Links whose verified correlation is lower are rejected.
  public var minCorrelation: Double = 0.6
  /// Pairs overlapping by fewer voxels (on any axis) are not registered.
  public var minOverlap: Double = 8
  /// Block-average the regions by this factor in y and x (z too when it is as fine) first.
  public var downsample: Int = 1
  /// Phase-correlation peaks to verify.
  public var peaks: Int = 5
  public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
  /// Bytes of decoded input blocks kept while registering (default: a quarter of physical memory,
  /// at most 4 GiB). Neighbouring pairs share chunks of a tile, so each is decoded once.
  public var memoryBytes: Int = Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30))
  /// Global solve: links are dropped (the worst first) while their leave-one-out disagreement with the other
  /// links exceeds both this many standard deviations (its own and the path's, combined)…
  public var maxNormalizedResidual: Double = 4
  /// …and this many voxels.
  public var minDiscrepancy: Double = 0.5
  /// Standard deviation (voxels, per axis) assumed for links that carry none of their own.
  public var defaultUncertainty: Double = 0.25
  /// Tiles all of whose accepted links are less certain than this (voxels, on some axis) are
  /// reported as weakly linked.
  public var weakUncertainty: Double = 0.25
  /// Smallest per-axis standard deviation a pairwise measurement reports, voxels.
  public var uncertaintyFloor: Double = 0.02
  /// Where reading (``Stage/readDecode``), pairwise registration (``Stage/phaseCorrelation``,
  /// with the voxels of both regions) and the global solve are timed, or nil.
  public var stageClock: StageClock?

  public init(maxShift: [Double]) { self.maxShift = maxShift }
}

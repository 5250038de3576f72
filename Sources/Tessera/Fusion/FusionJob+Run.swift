import Dispatch
import Foundation
import TesseraCore
import TesseraFusion
import TesseraIO

extension FusionJob {
  /// Runs the fusion into `output`: the whole job in this process (`part` nil: create, fill,
  /// finalize), or one part of a multi-process job (create or join the output, fill this part's
  /// share, and — with `finalize` — finalize if every part is done; otherwise the last part to
  /// finish, or `tessera finalize`, does).
  ///
  /// - Throws: ``ZarrError`` for output problems (exists, disk full, a part already running),
  ///   ``HDF5Error`` and others for input problems. Everything written before a failure is kept
  ///   and recorded, so the same command with `--resume` continues.
  public func run(
    output: String, part: Part? = nil, finalize: Bool = true,
    progress: @escaping @Sendable (FusionProgress) -> Void
  ) throws -> FusionSummary {
    let start = ContinuousClock.now
    @Sendable func seconds() -> Double { StageClock.seconds(since: start) }
    let outputPlan = try outputPlan()
    // One writer per output (or per part of one), from before the output is created, replaced
    // or resumed.
    let lock = try OutputLock(output: output, command: part.map { "fuse part \($0)" } ?? "fuse", part: part)
    defer { lock.release() }
    // Parts and a single-process run that replaces the output exclude each other (parts only
    // lock their part; a finalizing process is no obstacle: it writes what parts would).
    if part == nil, options.mode == .overwrite, let holder = OutputLock.livePartHolders(of: output).first {
      throw ZarrError(
        path: output, "is being written by \(holder); wait for its parts to finish, or stop them first", kind: .busy)
    }
    if part != nil, let holder = OutputLock.liveHolder(of: OutputLock.path(for: output)), holder.hasPrefix("fuse (") {
      throw ZarrError(path: output, "is being written by \(holder); wait for it, or stop it first", kind: .busy)
    }
    let mode: OMEZarrImage.Mode
    switch (part, options.mode) {
    case (nil, let m): mode = m
    case (_, .resume): mode = .resume
    case (_, .overwrite):
      throw OptionError(
        "--overwrite", "parts cannot replace an output (another part may be writing it); remove \(output) first")
    case (_, _): mode = .join
    }
    let image = try OMEZarrImage.create(at: output, spec: spec, mode: mode, plan: outputPlan, part: part ?? .whole)
    // This process's blocks, in the order to write them, and the pyramid levels its stream builds.
    let split = part.map { self.shares(count: $0.count) }
    let mine = split.map { $0.parts[part!.index] }
    let (written, fusedVoxels, stored, bytesRead, total, stream) = try fuseLevel0(
      into: image, share: mine, top: split?.top, progress: progress, seconds: seconds)
    progress(FusionProgress(phase: "fuse", done: written, total: total, voxels: fusedVoxels, elapsed: seconds()))
    let fuseSeconds = seconds()
    if let stream, !stream.isComplete {
      throw ZarrError(path: output, "internal error: the in-stream pyramid is incomplete")
    }
    var finalized = true
    var pending: String?
    if let part {
      try image.finishJournal()
      if finalize {
        (finalized, pending) = try finalizeIfDone(output, after: part)
      } else {
        (finalized, pending) = (false, "not finalized (--no-finalize); run tessera finalize \(output) after all parts")
      }
    } else {
      if stream == nil {
        try Interruption.check(
          "every block of level 0 is written; run the same command with --resume (instead of --overwrite) to finish")
        // Built on many threads: the process's CPU time (nothing else runs meanwhile).
        let cpu = StageClock.processSeconds()
        try image.buildPyramid(threads: options.threads, checksums: options.mode == .resume)
        options.stageClock?.add(.pyramid, seconds: StageClock.processSeconds() - cpu)
      }
      try image.finishJournal()
    }
    let pyramidSeconds = seconds() - fuseSeconds
    if part == nil {
      try options.stageClock.time(.metadata) {
        try image.finish(provenance: outputPlan.provenance)
        image.removeLeftovers(all: OutputLock.livePartHolders(of: output).isEmpty)
      }
    }
    let totalSeconds = seconds()
    let inputVoxelBytes = plan.views.first.map { dataset.views[$0.index].elementType.byteCount } ?? 1
    options.stageClock?.count(.readDecode, voxels: bytesRead / inputVoxelBytes)
    return FusionSummary(
      voxels: fusedVoxels, seconds: fuseSeconds, pyramidSeconds: pyramidSeconds,
      metadataSeconds: totalSeconds - fuseSeconds - pyramidSeconds, totalSeconds: totalSeconds,
      pyramidInStream: stream != nil, pyramidPeakBytes: stream?.peakBytes ?? 0, blocksWritten: stored,
      blocksSkipped: (mine?.count ?? plan.blocks.count) - total + plan.totalBlocks - plan.blocks.count,
      bytesRead: bytesRead, peakRSSBytes: ResourceUsage.peakRSS, part: part, finalized: finalized,
      pending: pending)
  }

  /// After a part: finalizes the output if every part is done (the journals of all parts say
  /// so), unless another process is finalizing it. Returns whether the output is finalized, and
  /// otherwise what it waits for.
  private func finalizeIfDone(_ output: String, after part: Part) throws -> (Bool, String?) {
    let image = try OMEZarrImage.open(at: output)
    let missing = image.missingLevel0()
    guard missing.isEmpty else {
      return (
        false,
        (image.partsReport() ?? "\(missing.count) level-0 blocks are not done")
          + "; the last part to finish finalizes (or run tessera finalize \(output))"
      )
    }
    let lock: OutputLock
    do { lock = try OutputLock(output: output, command: "finalize (after fuse part \(part))") } catch let e
      as ZarrError where e.kind == .busy
    {
      return (false, "another process is finalizing \(output)")
    }
    defer { lock.release() }
    let cpu = StageClock.processSeconds()
    try OMEZarrImage.finalize(
      at: output, threads: options.threads, checksums: options.mode == .resume, after: part)
    options.stageClock?.add(.pyramid, seconds: StageClock.processSeconds() - cpu)
    return (true, nil)
  }

  /// Fuses the planned level-0 blocks (or those of a part's `share`, positions in `plan.blocks`
  /// in the order to write them) not already complete. The input cache lives only for this phase,
  /// so the pyramid that follows reuses its memory instead of adding to it. `top`: the highest
  /// level a part's stream builds.
  private func fuseLevel0(
    into image: OMEZarrImage, share: [Int]?, top: Int?, progress: @escaping @Sendable (FusionProgress) -> Void,
    seconds: @escaping @Sendable () -> Double
  ) throws -> (done: Int, voxels: Int, stored: Int, bytesRead: Int, total: Int, stream: OMEZarrImage.PyramidStream?) {
    let level0 = image.levels[0]
    let candidates = share ?? Array(plan.blocks.indices)
    // Resuming: blocks recorded as complete whose files match their records (read and checked,
    // so a damaged file is written again) are kept.
    let linear = candidates.map { level0.grid.linearIndex(ofChunk: Self.blockIndex(plan.blocks[$0], spec)) }
    let recorded = candidates.indices.filter { image.completedAtOpen[0].contains(linear[$0]) }
    let intact = Locked([Bool](repeating: false, count: recorded.count))
    try Parallel.forEach(recorded.count, threads: options.threads) { k in
      let ok = image.isIntact(level: 0, block: linear[recorded[k]])
      intact.withLock { $0[k] = ok }
    }
    let kept = intact.withLock { $0 }
    let complete = recorded.indices.filter { kept[$0] }.map { candidates[recorded[$0]] }
    let skip = Set(complete)
    let remaining = candidates.filter { !skip.contains($0) }.map { plan.blocks[$0] }
    let indices = remaining.map { Self.blockIndex($0, spec) }
    // The pyramid in the stream (a fresh output whose budget holds it): each level-0 block is
    // reduced into the level above as it is written. The blocks then go in pyramid order, so the
    // children of a pyramid block come one after another (few open blocks; neighbours share input
    // blocks). Otherwise plan order (neighbours together, so input blocks they share are still
    // cached) — or, when the cache holds all the input anyway, the blocks with the most views (the
    // slowest) first, so the threads finish together. The order never changes the output.
    let stream = resources.pyramidBytes > 0 && complete.isEmpty ? image.pyramidStream(for: indices, top: top) : nil
    // Without the stream (a resumed output) the memory set aside for it goes to the cache. The
    // cache lives only for this phase, so a pyramid built from disk afterwards reuses its memory.
    let cache = ViewBlockCache(
      sources: cacheSources, budget: resources.cacheBytes(streaming: stream != nil))
    let executor = FusionExecutor(
      plan: plan, cache: cache, outputType: spec.dataType, fillValue: spec.fillValue, clock: options.stageClock)
    let order: [Int]
    if share != nil {
      order = Array(remaining.indices)  // the share is in pyramid order
    } else if stream != nil {
      order = image.pyramidOrder(of: indices)
    } else if resources.cachedInputBytes <= resources.cacheBytes {
      order = remaining.indices.sorted { (remaining[$0].views.count, $1) > (remaining[$1].views.count, $0) }
    } else {
      order = Array(remaining.indices)
    }
    // Every source region the executor will read (each piece of each block, each of its views),
    // announced to the cache, so each input block is dropped as soon as its last reader has it and
    // its memory is reused.
    let lead = spec.leadingAxes.count
    for k in order {
      for piece in level0.pieces(ofBlock: indices[k]) {
        let spatial = Box(lower: Array(piece.lower.dropFirst(lead)), upper: Array(piece.upper.dropFirst(lead)))
        for v in remaining[k].views {
          if let source = plan.sourceBox(view: v, for: spatial) { cache.expect(view: plan.views[v].index, box: source) }
        }
      }
    }
    let counters = Counters()
    let total = order.count
    let timer = DispatchSource.makeTimerSource()
    timer.schedule(deadline: .now() + 0.5, repeating: 0.5)
    timer.setEventHandler {
      let (d, v) = counters.snapshot
      progress(FusionProgress(phase: "fuse", done: d, total: total, voxels: v, elapsed: seconds()))
    }
    timer.resume()
    defer { timer.cancel() }
    let clock = options.stageClock
    /// Fuses, writes and logs output block `order[i]`.
    @Sendable func fuseBlock(_ i: Int) throws {
      let b = remaining[order[i]]
      let index = indices[order[i]]
      var voxels = 0
      // Stage times: the executor adds read+decode and resample+blend; the rest of writing the
      // block is encode+write.
      // (Thread CPU clocks are system calls: read only when timing.)
      let now = { clock == nil ? 0 : StageClock.threadSeconds() }
      let start = now()
      var inner = 0.0
      let stored = try image.writeBlock(level: 0, index) { box in
        let t0 = now()
        defer { inner += now() - t0 }
        let spatial = Box(lower: Array(box.lower.dropFirst(lead)), upper: Array(box.upper.dropFirst(lead)))
        voxels += spatial.volume
        let piece = try executor.fuse(b, box: spatial, resultBox: box)
        if let piece, let stream {
          let t1 = now()
          stream.add(level: 0, block: index, piece: piece)
          clock?.add(.pyramid, seconds: now() - t1)
        }
        return piece
      }
      clock?.add(.encodeWrite, seconds: now() - start - inner, voxels: voxels)
      try clock.time(.pyramid) { try stream?.finished(level: 0, block: index) }
      counters.add(stored: stored, voxels: voxels)
    }
    // Nested work (a block's chunks decoded at once) on the worker's own thread while the blocks
    // fill the threads. A stop request (SIGINT, SIGTERM) lets the blocks in flight finish and
    // starts no more: every finished block is in the progress log, so --resume continues.
    do {
      try Parallel.forEach(
        total, threads: options.threads, nested: resources.decoderThreads(blocks: total)
      ) { i in
        try Interruption.check("")
        try fuseBlock(i)
      }
    } catch let stop as Interrupted {
      let unit = spec.shardShape == nil ? "chunks" : "shards"
      throw Interrupted(
        signal: stop.signal,
        progress: "\(counters.snapshot.0) of the \(total) \(unit) to do are written; run the same command with "
          + "--resume (instead of --overwrite, if it had it) to finish")
    }
    let (written, fusedVoxels) = counters.snapshot
    return (written, fusedVoxels, counters.storedCount, cache.statistics.bytesRead, total, stream)
  }
}

final class Counters: @unchecked Sendable {
  private let lock = NSLock()
  private var done = 0
  private var stored = 0
  private var voxels = 0
  func add(stored s: Bool, voxels v: Int) {
    lock.withLock {
      done += 1
      if s { stored += 1 }
      voxels += v
    }
  }
  var snapshot: (Int, Int) { lock.withLock { (done, voxels) } }
  var storedCount: Int { lock.withLock { stored } }
}

/// Process resource usage.
public enum ResourceUsage {
  /// Peak resident set size of this process, bytes (`getrusage`, ru_maxrss in KiB on Linux).
  public static var peakRSS: Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
  }
}

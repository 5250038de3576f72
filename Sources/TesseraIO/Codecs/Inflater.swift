import CIsal
import Foundation
import TesseraCore

/// The whole-buffer decoders of zlib streams (HDF5's deflate chunks), and which one this process
/// uses.
///
/// ISA-L (`isal_inflate_stateless`) and libdeflate (`libdeflate_zlib_decompress`) both decode a
/// zlib stream in one call and check its adler32; they write the same bytes, so the choice changes
/// speed, never output. Neither is faster everywhere: on HDF5 gzip chunks of 16-bit microscope
/// data ISA-L was 4 % slower to 24 % faster than libdeflate on one machine (AMD EPYC, Zen 1; 7–13 %
/// faster on the real chunks) and 0–21 % slower on another (README, "Reading speed"). So the process races them on its own data: the first
/// ``trials`` zlib streams of at least ``trialMinimumBytes`` alternate between the two, each timed
/// in thread CPU time (which other processes on a shared machine stretch little), and the one that
/// decoded more bytes per CPU second decodes every later stream (streams a contender refuses do not
/// count; a contender that refuses ``refusalsToLose`` of them loses the race). `TESSERA_INFLATE=isal`,
/// `libdeflate` or `zlib` fixes the choice instead (for benchmarks). A stream the chosen decoder
/// refuses goes to zlib, which decodes whatever the others do not and words the error for what
/// nobody decodes. gzip streams (Zarr's `gzip` codec) go to libdeflate.
public enum Inflater: String, Sendable, CaseIterable {
  case isal, libdeflate, zlib

  /// Streams decoded by the race before it is decided (half by each contender).
  static let trials = 16
  /// Smaller streams decode without taking part in the race (their timings are mostly overhead).
  static let trialMinimumBytes = 4096
  /// Timed streams a contender may refuse (valid streams the other decodes) before it loses.
  static let refusalsToLose = 4

  /// Inflates the zlib stream `input` into `output` with `decoder`; the bytes written, or nil if
  /// the decoder refuses the stream (zlib throws instead, with the reason).
  static func inflate(
    _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, with decoder: Inflater,
    codec: String
  ) throws -> Int? {
    switch decoder {
    case .isal:
      // The shim refuses what ISA-L must not take (too short, a window over 32 KiB, over 4 GiB).
      let n = tessera_isal_inflate_zlib(input.baseAddress, input.count, output.baseAddress, output.count)
      return n >= 0 ? Int(n) : nil
    case .libdeflate:
      return DeflateCodec.inflateWithLibdeflate(input, into: output)
    case .zlib:
      return try DeflateCodec.inflateWithZlib(input, into: output, codec: codec)
    }
  }

  /// Inflates a zlib stream with this process's decoder (racing while undecided); zlib decodes
  /// what that decoder refuses.
  static func inflateZlib(
    _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, codec: String,
    race: InflaterRace = .shared
  ) throws -> Int {
    let (decoder, timed) = race.next(outputBytes: output.count)
    var n: Int?
    if timed {
      let start = StageClock.threadSeconds()
      n = try inflate(input, into: output, with: decoder, codec: codec)
      if let n {
        race.report(decoder, seconds: StageClock.threadSeconds() - start, bytes: n)
      } else {
        race.withdraw(decoder)
      }
    } else {
      n = try inflate(input, into: output, with: decoder, codec: codec)
    }
    if let n { return n }
    return try DeflateCodec.inflateWithZlib(input, into: output, codec: codec)
  }

  /// What this process decodes zlib streams with, and why: "isal (race: 341 against libdeflate
  /// 276 MiB/s per core)", "libdeflate (TESSERA_INFLATE)", or "undecided" before the race ends.
  public static var choice: String { InflaterRace.shared.summary }
}

/// The race between ISA-L and libdeflate (see ``Inflater``): one per process.
final class InflaterRace: @unchecked Sendable {
  static let shared = InflaterRace(forced: ProcessInfo.processInfo.environment["TESSERA_INFLATE"])

  private let lock = NSLock()
  /// Timed streams handed out and not yet reported, per contender.
  private var running = [0, 0]
  private var seconds = [0.0, 0.0]
  private var bytes = [0, 0]
  private var reports = [0, 0]
  private var refusals = [0, 0]
  private var winner: Inflater?
  private let forced: Bool
  private static let contenders: [Inflater] = [.isal, .libdeflate]

  /// - Parameter forced: `TESSERA_INFLATE`: a decoder's name fixes the choice; nil or anything
  ///   else races.
  init(forced: String?) {
    winner = forced.flatMap { Inflater(rawValue: $0.lowercased()) }
    self.forced = winner != nil
  }

  /// The decoder for the next stream, and whether its time is to be reported (then exactly one of
  /// ``report(_:seconds:bytes:)`` or ``withdraw(_:)`` follows). Until the race is decided, timed
  /// streams go to the contender with fewer trials reported or running, ISA-L first on a tie.
  func next(outputBytes: Int) -> (Inflater, timed: Bool) {
    lock.lock()
    defer { lock.unlock() }
    if let winner { return (winner, false) }
    let i = reports[0] + running[0] <= reports[1] + running[1] ? 0 : 1
    // Small streams, and streams while the last trials are still running: not timed.
    guard outputBytes >= Inflater.trialMinimumBytes, reports[i] + running[i] < Inflater.trials / 2 else {
      return (Self.contenders[i], false)
    }
    running[i] += 1
    return (Self.contenders[i], true)
  }

  /// A timed stream that `decoder` refused (corrupt, or a form it does not take): it does not
  /// count, but a contender that refuses ``Inflater/refusalsToLose`` timed streams loses.
  func withdraw(_ decoder: Inflater) {
    guard let i = Self.contenders.firstIndex(of: decoder) else { return }
    lock.withLock {
      running[i] -= 1
      refusals[i] += 1
      if winner == nil && refusals[i] >= Inflater.refusalsToLose { winner = Self.contenders[1 - i] }
    }
  }

  /// A timed stream decoded: once both contenders have reported half the trials, the one with more
  /// bytes per CPU second wins.
  func report(_ decoder: Inflater, seconds s: Double, bytes b: Int) {
    guard let i = Self.contenders.firstIndex(of: decoder) else { return }
    lock.lock()
    defer { lock.unlock() }
    running[i] -= 1
    guard winner == nil else { return }
    seconds[i] += s
    bytes[i] += b
    reports[i] += 1
    guard reports.allSatisfy({ $0 >= Inflater.trials / 2 }) else { return }
    winner = speed(0) >= speed(1) ? Self.contenders[0] : Self.contenders[1]
  }

  /// Bytes per CPU second of contender `i` so far (infinite when its time rounds to zero).
  private func speed(_ i: Int) -> Double { seconds[i] > 0 ? Double(bytes[i]) / seconds[i] : .infinity }

  var summary: String {
    lock.lock()
    defer { lock.unlock() }
    guard let winner else { return "undecided (\(reports[0] + reports[1]) of \(Inflater.trials) trial streams)" }
    if forced { return "\(winner.rawValue) (TESSERA_INFLATE)" }
    if refusals.contains(where: { $0 >= Inflater.refusalsToLose }) {
      return "\(winner.rawValue) (the other refused \(Inflater.refusalsToLose) streams)"
    }
    let other = winner == .isal ? 1 : 0
    let mine = 1 - other
    return String(
      format: "%@ (race: %.0f against %@ %.0f MiB/s per core)", winner.rawValue, speed(mine) / 1_048_576,
      Self.contenders[other].rawValue, speed(other) / 1_048_576)
  }
}

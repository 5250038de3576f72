import Foundation

/// A small, fast, seedable generator (SplitMix64) so that property tests are reproducible.
///
/// Each test takes its seed from `TESSERA_TEST_SEED` when set, otherwise from a fixed default, and
/// prints it, so a failure can be replayed with `TESSERA_TEST_SEED=<seed> swift test --filter …`.
struct SeededRandom: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  /// The generator for a test: the environment's seed, or `defaultSeed`; the seed is printed.
  static func forTest(_ name: String, defaultSeed: UInt64 = 0x5EED_7E55) -> SeededRandom {
    let env = ProcessInfo.processInfo.environment["TESSERA_TEST_SEED"].flatMap { UInt64($0) }
    let seed = env ?? defaultSeed
    print("[\(name)] seed \(seed) (set TESSERA_TEST_SEED to override)")
    return SeededRandom(seed: seed)
  }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

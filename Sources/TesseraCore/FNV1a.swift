/// 64-bit FNV-1a over the bytes added, for fingerprints that detect a changed plan (not a
/// cryptographic digest; Fowler, Noll and Vo, http://www.isthe.com/chongo/tech/comp/fnv/). The
/// typed adders precede every value by its length, so adjacent lists cannot trade elements.
public struct FNV1a: Sendable {
  public private(set) var value: UInt64

  /// A hash starting from FNV's offset basis, or from another `offset` (a second, independent hash).
  public init(offset: UInt64 = 0xcbf2_9ce4_8422_2325) { value = offset }

  public mutating func add(byte: UInt8) {
    value ^= UInt64(byte)
    value = value &* 0x0000_0100_0000_01b3
  }
  public mutating func add(word: UInt64) { for k in 0..<8 { add(byte: UInt8(truncatingIfNeeded: word >> (8 * k))) } }
  public mutating func add(_ n: Int) { add(word: UInt64(bitPattern: Int64(n))) }
  public mutating func add(_ values: [Int]) {
    add(values.count)
    for v in values { add(v) }
  }
  public mutating func add(_ values: [Double]) {
    add(values.count)
    for v in values { add(word: v.bitPattern) }
  }
  public mutating func add(_ text: String) {
    add(text.utf8.count)
    for b in text.utf8 { add(byte: b) }
  }
}

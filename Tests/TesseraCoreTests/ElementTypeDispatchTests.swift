import Testing

@testable import TesseraCore

@Suite struct ElementTypeDispatchTests {
  /// Reports the type it runs for.
  struct TypeOf: ElementTypeBody {
    func run<T: VoxelElement>(_: T.Type) -> (type: ElementType, size: Int, isFloat: Bool) {
      (T.elementType, MemoryLayout<T>.size, T.self == Float.self || T.self == Double.self)
    }
  }

  @Test(arguments: ElementType.allCases)
  func dispatchRunsTheBodyForTheNamedType(_ type: ElementType) {
    let seen = type.dispatch(TypeOf())
    #expect(seen.type == type)
    #expect(seen.size == type.byteCount)
    #expect(seen.isFloat == type.isFloatingPoint)
  }

  struct Refusal: Error, Equatable { var type: ElementType }

  /// Throws for one type, returns the type's name for the others.
  struct Refusing: ElementTypeBody {
    var refused: ElementType
    func run<T: VoxelElement>(_: T.Type) throws(Refusal) -> String {
      if T.elementType == refused { throw Refusal(type: refused) }
      return "\(T.self)"
    }
  }

  @Test func aThrowingBodyThrowsItsOwnErrorType() {
    #expect(throws: Refusal(type: .int16)) { try ElementType.int16.dispatch(Refusing(refused: .int16)) }
    #expect((try? ElementType.float32.dispatch(Refusing(refused: .int16))) == "Float")
  }

  /// Every pair of types converts by the rules of ``VoxelElement`` (through Double, which holds
  /// every supported value exactly).
  @Test(arguments: ElementType.allCases, ElementType.allCases)
  func conversionMatchesTheRulesForEveryPair(_ from: ElementType, _ to: ElementType) {
    let values: [Double] = [-3e9, -70000, -129, -2.5, -0.5, 0, 0.49, 1.5, 127.5, 255.5, 40000, 70000, 5e9, .nan]
    var source = AnyVolumeBuffer(elementType: from, box: Box(shape: [values.count]))
    source.withMutableBuffer(Store(values: values))
    var out = AnyVolumeBuffer(elementType: to, box: Box(shape: [values.count]))
    source.withUnsafeBytes { s in
      out.withUnsafeMutableBytes { d in
        ElementConversion.convert(values.count, from: from, s.baseAddress!, to: to, d.baseAddress!)
      }
    }
    let stored = source.converted(to: Double.self).storage
    let expected = AnyVolumeBuffer(elementType: to, box: Box(shape: [values.count])).withBuffer(Rules(values: stored))
    let got = out.converted(to: Double.self).storage
    #expect(zip(got, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(from) → \(to): \(got)")
  }

  /// Writes `values` (by the conversion rules) into the buffer.
  struct Store: VolumeBufferBody {
    var values: [Double]
    func run<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>) {
      for i in values.indices { buffer.storage[i] = T(clamping: values[i]) }
    }
  }

  /// `values` converted to the buffer's type by the rules, read back as Double.
  struct Rules: VolumeBufferBody {
    var values: [Double]
    func run<T: VoxelElement>(_: inout VolumeBuffer<T>) -> [Double] { values.map { T(clamping: $0).doubleValue } }
  }

  @Test(arguments: ElementType.allCases)
  func theBufferAccessorHandsOverTheTypedBufferInPlace(_ type: ElementType) {
    let box = Box(lower: [2, 3], upper: [4, 7])
    var buffer = AnyVolumeBuffer(elementType: type, box: box)
    #expect(buffer.elementType == type)
    #expect(buffer.box == box)
    let before = buffer.withUnsafeBytes { $0.baseAddress }
    buffer.withMutableBuffer(Store(values: [1, 2, 3]))
    // Written in place: the same storage, not a copy of it.
    #expect(buffer.withUnsafeBytes { $0.baseAddress } == before)
    #expect(buffer.converted(to: Double.self).storage == [1, 2, 3, 0, 0, 0, 0, 0])
    let reboxed = buffer.reboxed(Box(shape: [1, 8]))
    #expect(reboxed.box == Box(shape: [1, 8]) && reboxed.elementType == type)
    #expect(reboxed.withUnsafeBytes { $0.baseAddress } == before)
  }
}

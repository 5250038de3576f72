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
}

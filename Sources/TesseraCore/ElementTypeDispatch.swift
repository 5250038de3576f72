/// Code generic over the voxel type, run for the type that an ``ElementType`` names at run time.
///
/// Swift closures cannot be generic, so code that must run "for whichever type the file holds"
/// is a value of a type conforming to this protocol: its stored properties are what a closure
/// would capture, and ``run(_:)`` is the body. ``ElementType/dispatch(_:)`` calls it with the
/// concrete type:
///
/// ```swift
/// struct Fill: ElementTypeBody {
///   let count: Int
///   let value: Float
///   let destination: UnsafeMutableRawPointer
///   func run<T: VoxelElement>(_: T.Type) {
///     let (count, value) = (count, value)  // locals: see below
///     let d = destination.assumingMemoryBound(to: T.self)
///     for i in 0..<count { d[i] = T(clamping: value) }
///   }
/// }
/// outputType.dispatch(Fill(count: n, value: 0, destination: bytes))
/// ```
///
/// `dispatch` is inlinable, so it is compiled into the caller's module next to the conformance,
/// and the optimiser specialises `run` for each of the eight types: the loops inside `run` are
/// compiled for `UInt16`, `Float`, … rather than run through the protocol's witness tables. That
/// holds in any module, provided the conformance and the generic code `run` calls are visible to
/// the caller's module (in it, or `@inlinable`).
///
/// Read the properties a loop uses into locals before the loop. A body larger than a few
/// registers is passed by reference, and a store through a pointer may alias it, so a property
/// read inside the loop is reloaded after every store and the loop does not vectorise (measured:
/// `FusionExecutor.finish`'s loops written as a body ran 3× slower until they read locals).
///
/// A body that throws states its error type (`func run<T: VoxelElement>(_: T.Type) throws(HDF5Error)`);
/// one that does not throw has `Failure == Never`, and dispatching it needs no `try`.
public protocol ElementTypeBody {
  /// What the body returns.
  associatedtype Result
  /// What the body throws (`Never`: it does not).
  associatedtype Failure: Error = Never
  /// The body, for the concrete voxel type `T`.
  func run<T: VoxelElement>(_ type: T.Type) throws(Failure) -> Result
}

extension ElementType {
  /// Runs `body` for the Swift type this names: `body.run(UInt16.self)` for `.uint16`,
  /// `body.run(Float.self)` for `.float32`, and so on; `T.elementType` is always `self`.
  ///
  /// The one switch from a run-time element type to code for the concrete type. Dispatch once per
  /// block or row, never per voxel: the loops belong inside the body.
  @inlinable
  public func dispatch<B: ElementTypeBody>(_ body: B) throws(B.Failure) -> B.Result {
    switch self {
    case .uint8: try body.run(UInt8.self)
    case .int8: try body.run(Int8.self)
    case .uint16: try body.run(UInt16.self)
    case .int16: try body.run(Int16.self)
    case .uint32: try body.run(UInt32.self)
    case .int32: try body.run(Int32.self)
    case .float32: try body.run(Float.self)
    case .float64: try body.run(Double.self)
    }
  }
}

import CFFTW
import Synchronization

/// FFTW's planner is not thread-safe: plan creation and destruction go through this lock, and
/// only `fftwf_execute_dft_r2c`/`_c2r` (the new-array execute functions) run concurrently.
/// The planner is set up once: threads initialised, planner made thread-safe, one thread per plan
/// (Tessera parallelises over tile pairs instead).
enum FFTWPlanner {
  static let lock = Mutex<Bool>(false)

  /// Runs `body` under the planner lock, initialising FFTW on first use.
  static func withLock<R>(_ body: () -> R) -> R {
    lock.withLock { initialised in
      if !initialised {
        _ = fftwf_init_threads()
        fftwf_make_planner_thread_safe()
        fftwf_plan_with_nthreads(1)
        initialised = true
      }
      return body()
    }
  }
}

/// A complex number as FFTW stores it (`fftwf_complex` is `float[2]`).
public typealias ComplexFloat = (re: Float, im: Float)

/// A pair of single-precision FFTW plans, real-to-complex and complex-to-real, for one N-D shape.
///
/// The forward transform of a real array of `shape` (C order) gives the non-redundant half
/// spectrum of `spectrumShape` (last axis `n/2 + 1`). Transforms are unnormalised:
/// `inverse(forward(x)) = x · count`. The inverse destroys its input.
///
/// Plans are immutable once made; `forward`/`inverse` may run on many threads at once on
/// different ``FFTBuffer``s (FFTW guarantees this for the new-array execute functions), which is
/// what makes the `@unchecked Sendable` sound.
public final class RealFFTPlan: @unchecked Sendable {
  /// Real-space shape, slowest axis first.
  public let shape: [Int]
  /// Half-spectrum shape: `shape` with the last axis `n / 2 + 1`.
  public let spectrumShape: [Int]
  let forwardPlan: OpaquePointer
  let inversePlan: OpaquePointer

  /// Plans transforms of `shape` (FFTW_ESTIMATE: planning is instant and leaves arrays alone).
  public init(shape: [Int]) {
    precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "FFT shape \(shape) must be positive")
    self.shape = shape
    var spec = shape
    spec[spec.count - 1] = shape[shape.count - 1] / 2 + 1
    self.spectrumShape = spec
    let realCount = shape.reduce(1, *)
    let complexCount = spec.reduce(1, *)
    let dims = shape.map { Int32($0) }
    let plans: (OpaquePointer, OpaquePointer) = FFTWPlanner.withLock {
      let r = fftwf_alloc_real(realCount)!
      let c = fftwf_alloc_complex(complexCount)!
      defer {
        fftwf_free(r)
        fftwf_free(c)
      }
      let f = dims.withUnsafeBufferPointer {
        fftwf_plan_dft_r2c(Int32(dims.count), $0.baseAddress, r, c, FFTW_ESTIMATE)
      }
      let i = dims.withUnsafeBufferPointer {
        fftwf_plan_dft_c2r(Int32(dims.count), $0.baseAddress, c, r, FFTW_ESTIMATE)
      }
      return (f!, i!)
    }
    forwardPlan = plans.0
    inversePlan = plans.1
  }

  deinit {
    let (f, i) = (forwardPlan, inversePlan)
    FFTWPlanner.withLock {
      fftwf_destroy_plan(f)
      fftwf_destroy_plan(i)
    }
  }

  /// Number of real samples.
  public var count: Int { shape.reduce(1, *) }

  /// Fresh, FFTW-aligned working memory for this plan, with room for at least `capacity` reals
  /// (and their half spectrum, as ``FFTBuffer`` sizes it).
  public func makeBuffer(capacity: Int = 0) -> FFTBuffer {
    FFTBuffer(realCount: count, complexCount: spectrumShape.reduce(1, *), capacity: capacity)
  }

  /// `buffer.real` → `buffer.spectrum`.
  public func forward(_ buffer: FFTBuffer) {
    precondition(buffer.realCount == count, "FFT buffer of \(buffer.realCount) reals for plan of \(count)")
    fftwf_execute_dft_r2c(forwardPlan, buffer.real, buffer.complexPointer)
  }

  /// `buffer.spectrum` → `buffer.real` (unnormalised; `spectrum` is destroyed).
  public func inverse(_ buffer: FFTBuffer) {
    precondition(buffer.realCount == count, "FFT buffer of \(buffer.realCount) reals for plan of \(count)")
    fftwf_execute_dft_c2r(inversePlan, buffer.complexPointer, buffer.real)
  }
}

/// FFTW-aligned working memory: a real array and a half spectrum. Owned by one task at a time
/// (``FFTPlanCache/withBuffers(_:for:_:)`` hands each out to one task), which is what makes the
/// `@unchecked Sendable` sound. A buffer serves any plan whose arrays fit in its capacity.
public final class FFTBuffer: @unchecked Sendable {
  /// Elements in use (the plan's sizes); the allocation may be larger.
  public private(set) var realCount: Int
  public private(set) var complexCount: Int
  let realCapacity: Int
  let complexCapacity: Int
  /// The real samples (C order).
  public let real: UnsafeMutablePointer<Float>
  let complexPointer: UnsafeMutablePointer<fftwf_complex>

  init(realCount: Int, complexCount: Int, capacity: Int = 0) {
    self.realCount = realCount
    self.complexCount = complexCount
    realCapacity = max(realCount, capacity)
    // A half spectrum of N real samples has N/2 + N/n complex values for a last axis of n: room
    // for N/2 + N/8 lets plans of one size but other shapes (a pair along x, one along y) share
    // buffers instead of each making its own.
    complexCapacity = max(complexCount, realCapacity / 2 + realCapacity / 8)
    real = fftwf_alloc_real(realCapacity)!
    real.initialize(repeating: 0, count: realCapacity)
    complexPointer = fftwf_alloc_complex(complexCapacity)!
    UnsafeMutableRawPointer(complexPointer).initializeMemory(as: Float.self, repeating: 0, count: 2 * complexCapacity)
  }

  /// Whether the buffer can hold `plan`'s arrays.
  func fits(_ plan: RealFFTPlan) -> Bool {
    realCapacity >= plan.count && complexCapacity >= plan.spectrumShape.reduce(1, *)
  }

  /// Sizes the buffer's views for `plan` (which must fit).
  func bind(to plan: RealFFTPlan) {
    precondition(fits(plan))
    realCount = plan.count
    complexCount = plan.spectrumShape.reduce(1, *)
  }

  deinit {
    fftwf_free(real)
    fftwf_free(complexPointer)
  }

  /// The half spectrum as (re, im) pairs.
  public var spectrum: UnsafeMutableBufferPointer<ComplexFloat> {
    UnsafeMutableBufferPointer(
      start: UnsafeMutableRawPointer(complexPointer).assumingMemoryBound(to: ComplexFloat.self), count: complexCount)
  }

  /// The real samples as a buffer.
  public var samples: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: real, count: realCount) }
}

/// A cache of FFT plans by shape; plans are made once per shape and shared by all tasks. It also
/// keeps the working buffers tasks give back, so a task transforming a shape seen before reuses
/// memory instead of allocating (and page-faulting in) fresh buffers.
public final class FFTPlanCache: Sendable {
  private let plans = Mutex<[[Int]: RealFFTPlan]>([:])
  private let free = Mutex<[FFTBuffer]>([])
  /// Reals every new buffer has room for at least.
  let bufferCapacity: Int

  /// `bufferCapacity`: the largest real count the caller's plans will need, when known in
  /// advance (a registration knows every pair's shape before it starts): every buffer is then
  /// made that large, fits every plan, and a worker's first buffers are its only ones (sizing each
  /// to its first plan would make a new one whenever a larger plan came after a smaller).
  public init(bufferCapacity: Int = 0) { self.bufferCapacity = bufferCapacity }

  /// The plan for `shape`, made on first request.
  public func plan(for shape: [Int]) -> RealFFTPlan {
    plans.withLock { cache in
      if let p = cache[shape] { return p }
      let p = RealFFTPlan(shape: shape)
      cache[shape] = p
      return p
    }
  }

  /// Runs `body` with `count` working buffers for `plan`, reusing buffers given back earlier
  /// when they are large enough (their contents are whatever the last task left).
  public func withBuffers<R>(_ count: Int, for plan: RealFFTPlan, _ body: ([FFTBuffer]) throws -> R) rethrows -> R {
    let buffers = (0..<count).map { _ in
      // The smallest buffer that fits, so large ones stay free for large plans.
      let reused = free.withLock { free in
        free.indices.filter { free[$0].fits(plan) }.min { free[$0].realCapacity < free[$1].realCapacity }
          .map { free.remove(at: $0) }
      }
      let buffer = reused ?? plan.makeBuffer(capacity: bufferCapacity)
      buffer.bind(to: plan)
      return buffer
    }
    defer {
      free.withLock { free in
        free.append(contentsOf: buffers)
        // Keep at most 16 (a few per worker); drop the smallest beyond that.
        let keep = 16
        if free.count > keep {
          free.sort { $0.realCapacity > $1.realCapacity }
          free.removeLast(free.count - keep)
        }
      }
    }
    return try body(buffers)
  }
}

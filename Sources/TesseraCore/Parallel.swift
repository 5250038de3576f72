import Dispatch
import Foundation
import Synchronization

/// Runs independent work items on a fixed number of threads.
public enum Parallel {
  /// Threads that work nested inside a parallel job may use (the chunks of one block decoded at
  /// once): on a worker of ``forEach(_:threads:nested:_:)`` given `nested`, that number (a job
  /// passes what its items leave idle, ``nestedThreads(_:items:)``: 1 when they fill its threads, so
  /// nothing runs wider than asked and no thread's work is done by another); elsewhere the cores,
  /// or a command's `--threads` (``limitThreads(to:)``).
  public static var threadLimit: Int {
    if let value = pthread_getspecific(nestedKey) { return Int(bitPattern: value) }
    return limit.load(ordering: .relaxed)
  }
  private static let limit = Atomic<Int>(ProcessInfo.processInfo.activeProcessorCount)
  /// Per thread: the nested limit of the job item it is running (unset outside jobs).
  private static let nestedKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
  }()

  /// Sets ``threadLimit`` outside jobs for the process (a command's `--threads`).
  public static func limitThreads(to threads: Int) { limit.store(max(1, threads), ordering: .relaxed) }

  /// The threads nested work gets in a job of `threads` threads running `items` items: what the
  /// items leave idle per item (1 when they fill the threads).
  public static func nestedThreads(_ threads: Int, items: Int) -> Int {
    max(1, threads / max(1, min(threads, items)))
  }

  /// Runs `body` with this thread's ``threadLimit`` at `nested` (if given), then restores it.
  static func withNested<R>(_ nested: Int?, _ body: () throws -> R) rethrows -> R {
    guard let nested else { return try body() }
    let previous = pthread_getspecific(nestedKey)
    pthread_setspecific(nestedKey, UnsafeRawPointer(bitPattern: max(1, nested)))
    defer { pthread_setspecific(nestedKey, previous) }
    return try body()
  }

  /// Calls `body(i)` for every i in `0..<count`, `threads` at a time (each thread takes the next
  /// unclaimed item), and rethrows the first error; after an error no new item starts. Items
  /// run in no particular order, so `body` must make its results independent of it. With
  /// `nested`, work nested inside an item sees ``threadLimit`` = `nested` (per thread, so
  /// concurrent jobs do not change each other's).
  public static func forEach(
    _ count: Int, threads: Int, nested: Int? = nil, _ body: @Sendable (Int) throws -> Void
  ) throws {
    guard count > 0 else { return }
    let state = SharedState()
    let workers = max(1, min(threads, count))
    if workers == 1 {
      try withNested(nested) { for i in 0..<count { try body(i) } }
      return
    }
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      withNested(nested) {
        while let i = state.next(below: count) {
          do { try body(i) } catch { state.fail(error) }
        }
      }
    }
    if let error = state.error { throw error }
  }

  /// The next item and the first error, behind one lock.
  private final class SharedState: @unchecked Sendable {  // all state is guarded by `lock`
    private let lock = NSLock()
    private var index = 0
    private var first: (any Error)?

    func next(below limit: Int) -> Int? {
      lock.withLock {
        guard first == nil, index < limit else { return nil }
        defer { index += 1 }
        return index
      }
    }

    func fail(_ error: any Error) { lock.withLock { if first == nil { first = error } } }
    var error: (any Error)? { lock.withLock { first } }
  }
}

/// A value many threads update under a lock.
public final class Locked<Value>: @unchecked Sendable {  // `value` is only touched under `lock`
  private let lock = NSLock()
  private var value: Value

  public init(_ value: Value) { self.value = value }

  /// Runs `body` with exclusive access to the value.
  public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    try lock.withLock { try body(&value) }
  }
}

/// Reusable objects (per-task working memory) handed to one task at a time: a task takes one
/// (or a new one is made), uses it, and gives it back, so at most as many exist as tasks ever ran
/// at once.
public final class Pool<Item: AnyObject>: @unchecked Sendable {  // `free` is only touched under `lock`
  private let lock = NSLock()
  private var free: [Item] = []
  private let make: () -> Item

  public init(_ make: @escaping () -> Item) { self.make = make }

  /// Runs `body` with an item no other task holds meanwhile.
  public func withWorkspace<R>(_ body: (Item) throws -> R) rethrows -> R {
    let item = lock.withLock { free.popLast() } ?? make()
    defer { lock.withLock { free.append(item) } }
    return try body(item)
  }
}

/// Raw memory one task reuses from item to item: grown (with a quarter of headroom, so slightly
/// larger requests later do not reallocate) when a larger request comes, never shrunk or zeroed.
/// Reuse avoids allocating, and having the kernel zero-fill, fresh pages for every item.
public final class ScratchBuffer {
  private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)

  public init() {}

  /// `count` bytes, 64-byte aligned; their contents are whatever the last user left.
  public func bytes(_ count: Int) -> UnsafeMutableRawBufferPointer {
    if memory.count < count {
      memory.deallocate()
      memory = .allocate(byteCount: count + count / 4, alignment: 64)
    }
    return UnsafeMutableRawBufferPointer(rebasing: memory[..<count])
  }

  /// Room for `count` Floats (uninitialised).
  public func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
    bytes(count * MemoryLayout<Float>.stride).bindMemory(to: Float.self).baseAddress!
  }

  deinit { memory.deallocate() }
}

import Foundation
import Testing

@testable import TesseraCore

/// A job's nested thread limit is its own: concurrent jobs (or a job and plain code) never see
/// each other's, and it is gone when the job ends.
@Suite struct ParallelNestedLimitTests {
  @Test func concurrentJobsSeeTheirOwnNestedLimit() throws {
    let outside = Parallel.threadLimit
    let seen = Locked([[Int]](repeating: [], count: 2))
    try Parallel.forEach(2, threads: 2) { job in
      // Two jobs at once, nested limits 1 and 3, each item checking what it sees.
      try Parallel.forEach(40, threads: 2, nested: job == 0 ? 1 : 3) { _ in
        let limit = Parallel.threadLimit
        usleep(200)
        seen.withLock { $0[job].append(limit) }
      }
    }
    let result = seen.withLock { $0 }
    #expect(result[0].count == 40 && result[0].allSatisfy { $0 == 1 })
    #expect(result[1].count == 40 && result[1].allSatisfy { $0 == 3 })
    #expect(Parallel.threadLimit == outside)
  }

  @Test func nestedThreadsShareTheIdleThreads() {
    #expect(Parallel.nestedThreads(2, items: 72) == 1)
    #expect(Parallel.nestedThreads(8, items: 2) == 4)
    #expect(Parallel.nestedThreads(8, items: 1) == 8)
    #expect(Parallel.nestedThreads(1, items: 0) == 1)
  }
}

/// Errors map to exit statuses by kind; errors Tessera did not expect are internal.
@Suite struct FailureKindTests {
  struct Unexpected: Error {}
  struct Known: ClassifiedError { var kind: FailureKind }

  @Test func kindsAndStatuses() {
    #expect(FailureKind.of(Unexpected()) == .internal && FailureKind.internal.rawValue == 70)
    #expect(FailureKind.of(Known(kind: .io)) == .io && FailureKind.io.rawValue == 74)
    #expect(FailureKind.of(POSIXError(.ENOSPC)) == .io)
    #expect(FailureKind.of(CocoaError(.fileWriteNoPermission)) == .io)
    #expect(FailureKind.of(GeometryError.singular("det 0")) == .data)
    #expect(
      FailureKind.usage.rawValue == 64 && FailureKind.data.rawValue == 65 && FailureKind.interrupted.rawValue == 130)
    #expect(FailureKind.of(Known(kind: .busy)) == .busy && FailureKind.busy.rawValue == 75)
    #expect(
      FailureKind.of(OptionError("--shard", "x")) == .usage && "\(OptionError("--shard", "a\nb"))" == "--shard: a\\nb")
    #expect(ChunkGrid.holdsWhole([2, 8], in: [4, 16]) && !ChunkGrid.holdsWhole([2, 8], in: [4, 12]))
    #expect(!ChunkGrid.holdsWhole([2, 8], in: [4]) && !ChunkGrid.holdsWhole([0, 8], in: [4, 16]))
  }
}

import Foundation
import Testing

@testable import TesseraCore

/// Stage times and voxel counts add up exactly whatever the threads and their order.
@Suite struct StageClockTests {
  @Test func concurrentAddsSumExactly() throws {
    let clock = StageClock()
    try Parallel.forEach(1000, threads: 4) { i in
      clock.add(.readDecode, seconds: 0.001, voxels: i)
      clock.count(.resampleBlend, voxels: 2)
    }
    let totals = clock.snapshot
    #expect(totals[.readDecode]?.voxels == 999 * 1000 / 2)
    #expect(abs((totals[.readDecode]?.seconds ?? 0) - 1.0) < 1e-9)
    #expect(totals[.resampleBlend] == StageClock.Total(seconds: 0, voxels: 2000))
    #expect(totals[.pyramid] == nil)
  }

  @Test func timeAddsThreadCPUTimeAndReturnsTheResult() throws {
    let clock = StageClock()
    // Sleeping costs no CPU; spinning for 5 ms of CPU does.
    let slept = clock.time(.metadata) { () -> Int in
      usleep(20000)
      return 1
    }
    let value = clock.time(.pyramid, voxels: 7) { () -> Int in
      let start = StageClock.threadSeconds()
      var x = 0
      while StageClock.threadSeconds() - start < 0.005 { x &+= 1 }
      return x > 0 ? 42 : 0
    }
    #expect(value == 42 && slept == 1)
    let total = try #require(clock.snapshot[.pyramid])
    #expect(total.seconds >= 0.005 && total.seconds < 5 && total.voxels == 7)
    #expect(try #require(clock.snapshot[.metadata]).seconds < 0.01)
    // Without a clock the body still runs.
    let none: StageClock? = nil
    #expect(none.time(.pyramid) { 5 } == 5)
    // JSON: every stage by name, plus the extra keys.
    let object = try JSONSerialization.jsonObject(with: clock.json(extra: ["threads": 2])) as? [String: Any]
    #expect((object?["pyramid"] as? [String: Any])?["voxels"] as? Int == 7)
    #expect(object?["threads"] as? Int == 2)
  }
}

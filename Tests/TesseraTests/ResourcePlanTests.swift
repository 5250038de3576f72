import Testing

@testable import Tessera
@testable import TesseraCore

/// How a budget is divided: every term bounded, the prediction within the budget, the pyramid
/// streamed only when it fits, and a budget that is too small refused with the one that is not.
@Suite struct ResourcePlanTests {
  static let mib = 1 << 20

  @Test func termsAddUpWithinTheBudget() throws {
    let plan = try ResourcePlan(
      budget: 1024 * Self.mib, threads: 4, bytesPerRegion: 20 * Self.mib, largestBlock: Self.mib,
      streamBytes: 50 * Self.mib, cachedInputBytes: 10_000 * Self.mib, blocks: 100)
    #expect(plan.pyramidBytes == 50 * Self.mib)
    let slack = ResourcePlan.cacheSlack
    #expect(
      plan.cacheBytes
        == Int(Double(1024 * Self.mib - 80 * Self.mib - ResourcePlan.fixedOverhead - 50 * Self.mib) / slack))
    #expect(plan.predictedPeakBytes <= plan.budget)
    #expect(plan.predictedPeakBytes > plan.budget - 4)  // the cache takes what is left (rounding down)
    #expect(plan.decoderThreads == 1 && plan.decoderThreads(blocks: 2) == 2)
    #expect(plan.describe().count == 2 && plan.describe()[0].hasPrefix("memory      peak ≈"))
  }

  @Test func smallInputsNeedNoMoreThanThemselves() throws {
    let plan = try ResourcePlan(
      budget: 4096 * Self.mib, threads: 2, bytesPerRegion: Self.mib, largestBlock: Self.mib, streamBytes: nil,
      cachedInputBytes: 100 * Self.mib, blocks: 1)
    #expect(plan.pyramidBytes == 0)
    #expect(
      plan.predictedPeakBytes == Int(Double(100 * Self.mib) * ResourcePlan.cacheSlack) + 2 * Self.mib
        + ResourcePlan.fixedOverhead)
    #expect(plan.describe()[1].contains("2 threads"))
  }

  @Test func aTightBudgetDropsTheStreamThenRefuses() throws {
    // Room for the cache's minimum (16 blocks) but not for the stream as well.
    let need = 16 * Self.mib
    let budget = ResourcePlan.fixedOverhead + 2 * Self.mib + Int(Double(need) * ResourcePlan.cacheSlack) + 1024
    let plan = try ResourcePlan(
      budget: budget, threads: 2, bytesPerRegion: Self.mib, largestBlock: Self.mib, streamBytes: 8 * Self.mib,
      cachedInputBytes: 1000 * Self.mib, blocks: 10)
    #expect(plan.pyramidBytes == 0 && plan.cacheBytes >= need)
    #expect(plan.cacheBytes(streaming: false) == plan.cacheBytes)
    do {
      _ = try ResourcePlan(
        budget: budget - 4096, threads: 2, bytesPerRegion: Self.mib, largestBlock: Self.mib, streamBytes: nil,
        cachedInputBytes: 1000 * Self.mib, blocks: 10)
      Issue.record("a budget below the minimum was accepted")
    } catch {
      #expect(error.option == "--memory")
      #expect("\(error)".contains("give --memory \(FusionJob.format(bytes: budget - 1024)) or more"), "\(error)")
    }
  }
}

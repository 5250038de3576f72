import Testing

@testable import TesseraCore

@Suite struct PartTests {
  @Test func parsesZeroBasedParts() throws {
    #expect(try Part.parse("0/4") == Part(index: 0, count: 4))
    #expect(try Part.parse("3/4") == Part(index: 3, count: 4))
    for bad in ["4/4", "-1/4", "1", "a/b", "1/0", "1/2/3", ""] {
      #expect(throws: OptionError.self) { try Part.parse(bad) }
    }
  }

  @Test func launchersGiveRankAndSize() throws {
    func resolve(_ env: [String: String], count: Int? = nil) throws -> Part? {
      try Part.resolve(part: nil, count: count, environment: env)?.part
    }
    #expect(try resolve([:]) == nil)
    #expect(try resolve(["OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"]) == Part(index: 2, count: 3))
    #expect(try resolve(["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"]) == nil)  // mpirun -np 1
    #expect(try resolve(["PMI_RANK": "1", "PMI_SIZE": "4"]) == Part(index: 1, count: 4))
    // A job array numbered from 1 (--array=1-8).
    #expect(
      try resolve(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"])
        == Part(index: 2, count: 8))
    #expect(try resolve(["SLURM_ARRAY_TASK_ID": "5"], count: 6) == Part(index: 5, count: 6))
    // A stepped array (--array=0-10:2): tasks 0, 2, …, 10.
    #expect(
      try resolve([
        "SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
        "SLURM_ARRAY_TASK_COUNT": "6",
      ]) == Part(index: 3, count: 6))
    // srun with two tasks inside each of four array tasks: eight parts.
    #expect(
      try resolve([
        "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1",
        "SLURM_STEP_NUM_TASKS": "2",
      ]) == Part(index: 3, count: 8))
    #expect(
      try resolve(["SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"]) == Part(index: 1, count: 2))
    // A batch script's shell (no step) does the whole job whatever the allocation's tasks.
    #expect(try resolve(["SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"]) == nil)
    #expect(try resolve(["JOB_COMPLETION_INDEX": "7"], count: 10) == Part(index: 7, count: 10))
    #expect(try resolve(["AWS_BATCH_JOB_ARRAY_INDEX": "0"], count: 2) == Part(index: 0, count: 2))
  }

  @Test func inconsistentPartsAreRefused() {
    #expect(throws: OptionError.self) {
      try Part.resolve(part: nil, count: nil, environment: ["JOB_COMPLETION_INDEX": "1"])
    }
    #expect(throws: OptionError.self) {
      try Part.resolve(part: nil, count: 4, environment: ["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "3"])
    }
    #expect(throws: OptionError.self) { try Part.resolve(part: nil, count: 3, environment: [:]) }
    #expect(throws: OptionError.self) { try Part.resolve(part: "1/2", count: 3, environment: [:]) }
    #expect(throws: OptionError.self) {
      try Part.resolve(part: nil, count: 2, environment: ["AWS_BATCH_JOB_ARRAY_INDEX": "2"])
    }
    #expect(throws: OptionError.self) {
      try Part.resolve(part: nil, count: nil, environment: ["OMPI_COMM_WORLD_RANK": "x", "OMPI_COMM_WORLD_SIZE": "3"])
    }
  }

  /// Seeded: shares are contiguous, cover every item once, and each is within one item of the mean.
  @Test func sharesAreBalancedAndContiguous() {
    var rng = SplitMix64(seed: 14)
    for _ in 0..<200 {
      let n = Int(rng.next() % 300) + 1
      let parts = Int(rng.next() % 40) + 1
      let work = (0..<n).map { _ in Double(rng.next() % 1000) / 10 }
      let shares = Part.contiguousShares(work: work, count: parts)
      #expect(shares.count == parts)
      #expect(shares.first!.lowerBound == 0 && shares.last!.upperBound == n)
      for k in 1..<parts { #expect(shares[k].lowerBound == shares[k - 1].upperBound) }
      let total = work.reduce(0, +)
      let largest = work.max() ?? 0
      for s in shares {
        let sum = work[s].reduce(0, +)
        #expect(abs(sum - total / Double(parts)) <= largest + 1e-9)
      }
    }
  }
}

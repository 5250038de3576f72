import Testing

@testable import TesseraRegistration

@Suite struct FFTTests {
  @Test(arguments: [[16, 24], [6, 10, 9], [1, 8, 8]])
  func forwardInverseRoundTrip(shape: [Int]) {
    let plan = RealFFTPlan(shape: shape)
    let buffer = plan.makeBuffer()
    var original: [Float] = []
    for i in 0..<plan.count {
      let v = Float((i * 7919) % 101) / 10 - 5
      buffer.real[i] = v
      original.append(v)
    }
    plan.forward(buffer)
    // DC term is the sum.
    #expect(abs(buffer.spectrum[0].re - original.reduce(0, +)) < 1e-2)
    plan.inverse(buffer)
    let n = Float(plan.count)
    for i in 0..<plan.count { #expect(abs(buffer.real[i] / n - original[i]) < 1e-4) }
  }

  @Test func impulseHasFlatSpectrum() {
    let plan = RealFFTPlan(shape: [8, 8])
    #expect(plan.spectrumShape == [8, 5])
    let b = plan.makeBuffer()
    b.real[0] = 1
    plan.forward(b)
    for c in b.spectrum {
      #expect(abs(c.re - 1) < 1e-6 && abs(c.im) < 1e-6)
    }
  }

  @Test func plansAreSharedAndRunConcurrently() async {
    let cache = FFTPlanCache()
    #expect(cache.plan(for: [32, 32]) === cache.plan(for: [32, 32]))
    let sums = await withTaskGroup(of: Float.self) { group in
      for k in 0..<8 {
        group.addTask {
          let plan = cache.plan(for: [32, 32])
          let b = plan.makeBuffer()
          for i in 0..<plan.count { b.real[i] = Float(k) }
          plan.forward(b)
          return b.spectrum[0].re
        }
      }
      var out: [Float] = []
      for await s in group { out.append(s) }
      return out.sorted()
    }
    #expect(sums == (0..<8).map { Float($0 * 1024) })
  }

  /// Buffers given back to the cache serve later plans of other (smaller) shapes, with the same
  /// transforms as fresh buffers.
  @Test func reusedBuffersServeOtherShapes() {
    let cache = FFTPlanCache()
    func spectrumSum(_ shape: [Int], reuse: Bool) -> [Float] {
      let plan = cache.plan(for: shape)
      func run(_ b: FFTBuffer) -> [Float] {
        for i in 0..<plan.count { b.real[i] = Float((i * 37) % 11) - 5 }
        plan.forward(b)
        #expect(b.spectrum.count == plan.spectrumShape.reduce(1, *))
        return b.spectrum.map { $0.re + 2 * $0.im }
      }
      return reuse ? cache.withBuffers(1, for: plan) { run($0[0]) } : run(plan.makeBuffer())
    }
    _ = cache.withBuffers(2, for: cache.plan(for: [24, 30])) { _ in 0 }  // two large buffers given back
    for shape in [[8, 10], [16, 6], [24, 30], [5, 5]] {
      #expect(spectrumSum(shape, reuse: true) == spectrumSum(shape, reuse: false), "\(shape)")
    }
  }
}

import Foundation
import Tessera

/// The jobs: the child processes that run them, and the rotated dataset for --rotated.
extension ThroughputBench {
  /// The refined dataset with every tile turned by 2° about z (about its centre), saved beside it.
  static func rotate(_ path: String, into output: String) throws -> String {
    var (data, _) = try DatasetLoader.open([path])
    let angle = 2.0 * Double.pi / 180
    let (c, s) = (cos(angle), sin(angle))
    for i in data.views.indices {
      let v = data.views[i]
      let centre = v.viewToWorld.apply(v.shape.map { Double($0) / 2 })
      let n = v.rank
      // Rotation in the y,x plane (the last two axes).
      var linear = (0..<n).map { r in (0..<n).map { $0 == r ? 1.0 : 0.0 } }
      linear[n - 2][n - 2] = c
      linear[n - 2][n - 1] = -s
      linear[n - 1][n - 2] = s
      linear[n - 1][n - 1] = c
      let turn = try AffineTransform(linear: linear, translation: Array(repeating: 0, count: n))
      let about = compose(
        AffineTransform(translation: centre), compose(turn, AffineTransform(translation: centre.map { -$0 })))
      data.views[i].viewToWorld = compose(about, v.viewToWorld)
    }
    try DatasetLoader.save(data, to: output, transformName: "tessera bench rotation")
    return output
  }

  static func list(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }

  /// This executable (the same build runs the jobs).
  static var executable: String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }

  /// A finished child process.
  struct Child {
    var status: Int32
    var seconds: Double
    /// User and system CPU seconds.
    var cpuSeconds: Double
    var maxRSS: Int
  }

  /// Runs `exe args` with stdout and stderr to `log`; its exit status, wall time and peak RSS.
  static func spawn(_ exe: String, _ args: [String], log: String) throws -> Child {
    try Interruption.check("the scratch folder is removed")
    // The child starts with no signals blocked and SIGINT/SIGTERM at their defaults (this thread
    // may have them blocked or ignored), so it can install its own handling.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGTERM)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let start = ContinuousClock.now
    let error = posix_spawn(&pid, exe, &actions, &attributes, argv, environ)
    guard error == 0 else { throw UsageError("cannot run \(exe): \(String(cString: strerror(error)))") }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let seconds = StageClock.seconds(since: start)
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Child(
      status: code, seconds: seconds, cpuSeconds: StageClock.cpuSeconds(usage), maxRSS: usage.ru_maxrss * 1024)
  }

  /// The error for a child that failed: interrupted (this process's signal, or the child's own
  /// when the same Ctrl-C reached it first), else the child's kind with its last line.
  static func failure(_ what: String, _ child: Child, log: String) -> Error {
    if let signal = Interruption.signal ?? (child.status == 130 || child.status == 128 + SIGTERM ? SIGINT : nil) {
      return Interrupted(signal: signal, progress: "the scratch folder is removed")
    }
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let last = text.split(separator: "\n").last.map(String.init) ?? "no output"
    return CommandFailure(
      description: "bench: \(what) failed (exit \(child.status)): \(last)",
      kind: FailureKind(rawValue: child.status) ?? .internal)
  }
}

import Foundation
import TesseraCore

/// One writer per output: a lock file beside the output (`.NAME.tessera-lock` in its folder, so
/// it covers creating, replacing and resuming alike) naming the owner's host, process and start.
///
/// Taken with `link(2)` of a private file (atomic on local filesystems and NFS alike), and
/// refreshed every minute while held. A lock whose owner is gone is taken over: on the same host
/// when that process no longer exists (or its pid now belongs to a process started later), from
/// any host when it has not been refreshed for ``staleAfter`` seconds (its host died, or its job
/// was killed with `kill -9` elsewhere). Two processes taking over at once both rename their file
/// into place and re-read it: only the one whose file stayed proceeds.
public final class OutputLock: @unchecked Sendable {  // `timer` is set once, before it runs
  /// Seconds without a refresh after which another host's lock is taken over.
  public static let staleAfter: Double = 300
  /// Seconds between refreshes.
  static let refreshEvery: Double = 60

  /// The lock file for `output`.
  public static func path(for output: String) -> String {
    let url = URL(fileURLWithPath: output).standardizedFileURL
    return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tessera-lock").path
  }

  /// The owner recorded in a lock file.
  struct Owner: Codable, Equatable {
    var host: String
    var pid: Int32
    /// The process's start time (clock ticks since boot, /proc/PID/stat), against pid reuse.
    var started: UInt64
    var command: String
    var token: String
  }

  public let path: String
  private let owner: Owner
  private var timer: DispatchSourceTimer?

  /// Takes the lock of `output` for `command` ("fuse"), or throws naming who holds it.
  ///
  /// - Throws: ``ZarrError`` of kind ``FailureKind/busy`` when a live process holds it, of kind
  ///   I/O when the lock file cannot be written.
  public init(output: String, command: String) throws {
    path = Self.path(for: output)
    let me = Owner(
      host: ProcessInfo.processInfo.hostName, pid: getpid(), started: Self.startTime(of: getpid()) ?? 0,
      command: command, token: UUID().uuidString)
    owner = me
    let data = try JSONEncoder().encode(me)
    try ZarrStore.makeDirectory((path as NSString).deletingLastPathComponent)
    let mine = path + ".\(me.token)"
    guard FileManager.default.createFile(atPath: mine, contents: data) else {
      throw ZarrError(
        path: output, "cannot create the lock file \(mine) (\(String(cString: strerror(errno))))", kind: .io)
    }
    defer { unlink(mine) }
    if link(mine, path) != 0 {
      guard errno == EEXIST else {
        throw ZarrError(path: output, "cannot take the lock \(path) (\(String(cString: strerror(errno))))", kind: .io)
      }
      if let holder = Self.liveHolder(of: path) {
        throw ZarrError(
          path: output,
          "is being written by \(holder.command) (process \(holder.pid) on \(holder.host)); wait for it, or stop it "
            + "and run again with --resume (a lock of a process that died is taken over, from another host after "
            + "\(Int(Self.staleAfter / 60)) minutes without a refresh)", kind: .busy)
      }
      // Stale: take it over, then check nobody else did at the same moment.
      guard rename(mine, path) == 0 else {
        throw ZarrError(
          path: output, "cannot take over the lock \(path) (\(String(cString: strerror(errno))))", kind: .io)
      }
      guard Self.read(path) == me else {
        let other = Self.read(path)
        throw ZarrError(
          path: output,
          "was taken over at the same moment by process \(other?.pid ?? 0) on \(other?.host ?? "?"); run again later",
          kind: .busy)
      }
    }
    let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
    timer.schedule(deadline: .now() + Self.refreshEvery, repeating: Self.refreshEvery)
    let lock = path
    timer.setEventHandler { _ = utimes(lock, nil) }
    timer.resume()
    self.timer = timer
  }

  /// Gives the lock up (also on deinit): the file is removed if it is still this process's.
  public func release() {
    timer?.cancel()
    timer = nil
    if Self.read(path) == owner { unlink(path) }
  }

  deinit { release() }

  static func read(_ path: String) -> Owner? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(Owner.self, from: data)
  }

  /// The holder of the lock at `path` if it is alive, nil if the lock is stale (or unreadable
  /// and older than a refresh: a half-written file of a process that died at once).
  static func liveHolder(of path: String) -> Owner? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    let age = Date().timeIntervalSince1970 - Double(status.st_mtim.tv_sec)
    guard let holder = read(path) else {
      return age < refreshEvery ? Owner(host: "?", pid: 0, started: 0, command: "another process", token: "") : nil
    }
    if holder.host == ProcessInfo.processInfo.hostName {
      guard kill(holder.pid, 0) == 0 || errno == EPERM else { return nil }  // no such process
      if let started = startTime(of: holder.pid), holder.started != 0, started != holder.started { return nil }
      return holder
    }
    return age < staleAfter ? holder : nil
  }

  /// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), if known.
  static func startTime(of pid: Int32) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    // After "pid (comm)": state is field 3, start time field 22.
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 19 ? UInt64(fields[19]) : nil
  }
}

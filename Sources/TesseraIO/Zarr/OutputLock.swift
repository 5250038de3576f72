import Foundation
import TesseraCore

/// One writer per output: a lock file beside the output (`.NAME.tessera-lock` in its folder, so
/// it covers creating, replacing and resuming alike) naming the owner's host, process and start.
///
/// Taken with `link(2)` of a private file, which succeeds for one process only (on NFS a lost
/// reply can report EEXIST for a link that was made: the private file's link count tells), and
/// refreshed every minute while held. A lock whose owner is gone is taken over: on the same
/// machine (host name, boot and pid namespace all equal) when that process no longer exists or
/// its pid now belongs to a process started later; otherwise when the lock has not been
/// refreshed for ``staleAfter`` seconds (its host died, or its job was killed elsewhere), its age
/// measured against the filesystem's own clock (a file just created beside it). Taking over moves
/// the stale file aside under a private name — only one process can move a given file — checks it
/// is the one judged stale, and then takes the lock with `link(2)` like a fresh one.
public final class OutputLock: @unchecked Sendable {  // `timer` only changes in init and release()
  /// Seconds without a refresh after which a lock not provably on this machine is taken over.
  public static let staleAfter: Double = 300
  /// Seconds between refreshes.
  static let refreshEvery: Double = 60

  /// The lock file for `output`, or for one part of a multi-process fill of it (parts lock
  /// their share only, so they never lock each other out; two processes given one part do).
  public static func path(for output: String, part: Part? = nil) -> String {
    let url = URL(fileURLWithPath: output).standardizedFileURL
    let name = part.map { ".part-\($0.index)-of-\($0.count)" } ?? ""
    return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent)\(name).tessera-lock")
      .path
  }

  /// The owner recorded in a lock file.
  struct Owner: Codable, Equatable {
    var host: String
    var pid: Int32
    /// The process's start time (clock ticks since boot, /proc/PID/stat), against pid reuse.
    var started: UInt64
    var command: String
    var token: String
    /// The kernel's boot id and the pid namespace: the pid means this machine's process only
    /// when both match (a container sharing the host name has its own pids).
    var boot: String?
    var pidNamespace: String?
  }

  public let path: String
  private let owner: Owner
  private var timer: DispatchSourceTimer?

  /// Takes the lock of `output` for `command` ("fuse"), or throws naming who holds it.
  ///
  /// - Throws: ``ZarrError`` of kind ``FailureKind/busy`` when a live process holds it, of kind
  ///   I/O when the lock file cannot be written.
  public init(output: String, command: String, part: Part? = nil) throws {
    path = Self.path(for: output, part: part)
    let me = Owner(
      host: Self.hostName, pid: getpid(), started: Self.startTime(of: getpid()) ?? 0, command: command,
      token: UUID().uuidString, boot: Self.bootID, pidNamespace: Self.pidNamespace)
    owner = me
    let data = try JSONEncoder().encode(me)
    try ZarrStore.makeDirectory((path as NSString).deletingLastPathComponent)
    let mine = path + ".\(me.token)"
    guard FileManager.default.createFile(atPath: mine, contents: data) else {
      throw ZarrError(
        path: output, "cannot create the lock file \(mine) (\(String(cString: strerror(errno))))", kind: .io)
    }
    defer { unlink(mine) }
    func linked() -> Bool {
      if link(mine, path) == 0 { return true }
      var status = stat()
      return errno == EEXIST && stat(mine, &status) == 0 && status.st_nlink == 2
    }
    var attempts = 0
    while !linked() {
      guard errno == EEXIST else {
        throw ZarrError(path: output, "cannot take the lock \(path) (\(String(cString: strerror(errno))))", kind: .io)
      }
      attempts += 1
      let verdict = Self.holder(of: path, now: mine)
      let unknown = Owner(host: "an unknown host", pid: 0, started: 0, command: "another process", token: "")
      if let holder = verdict.live ?? (attempts > 3 ? verdict.stale ?? unknown : nil) {
        throw ZarrError(
          path: output,
          "is being written by \(holder.command) (process \(holder.pid) on \(holder.host)); wait for it, or stop it "
            + "and run again with --resume (the lock of a process that died is taken over, from another machine "
            + "after \(Int(Self.staleAfter / 60)) minutes without a refresh)", kind: .busy)
      }
      // Stale: move that very file aside (one process can), then link like a fresh lock.
      let aside = path + ".stale.\(me.token)"
      guard rename(path, aside) == 0 else { continue }  // gone meanwhile: try again
      if let moved = Self.read(aside), moved.token != verdict.stale?.token {
        _ = link(aside, path)  // a fresh lock taken meanwhile: put it back
      }
      unlink(aside)
    }
    let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
    timer.schedule(deadline: .now() + Self.refreshEvery, repeating: Self.refreshEvery)
    let (lock, token) = (path, me.token)
    timer.setEventHandler {
      if Self.read(lock)?.token == token { _ = utimes(lock, nil) }  // never refresh another's lock
    }
    timer.resume()
    self.timer = timer
  }

  /// Gives the lock up (also on deinit): the file is removed if it is still this process's.
  public func release() {
    timer?.cancel()
    timer = nil
    if Self.read(path)?.token == owner.token { unlink(path) }
  }

  deinit { release() }

  /// "fuse part 0/2 (process 12 on node3)" if a live process holds the lock at `path`, else nil.
  public static func liveHolder(of path: String) -> String? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    let probe = path + ".probe.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    _ = FileManager.default.createFile(atPath: probe, contents: nil)
    defer { unlink(probe) }
    return holder(of: path, now: probe).live.map { "\($0.command) (process \($0.pid) on \($0.host))" }
  }

  /// The live holders of the part locks of `output` (processes filling parts of it now).
  public static func livePartHolders(of output: String, except part: Part? = nil) -> [String] {
    let mine = part.map { (path(for: output, part: $0) as NSString).lastPathComponent }
    let whole = path(for: output)
    let folder = (whole as NSString).deletingLastPathComponent
    let stem = ((whole as NSString).lastPathComponent as NSString).deletingPathExtension + ".part-"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.hasPrefix(stem) && $0.hasSuffix(".tessera-lock") && $0 != mine }.sorted().compactMap {
      liveHolder(of: folder + "/" + $0)
    }
  }

  static func read(_ path: String) -> Owner? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(Owner.self, from: data)
  }

  /// The holder of the lock at `path`: `live` if it may still be running, else `stale` (nil
  /// when the lock has gone). `now` is a file just created beside it: the filesystem's clock.
  static func holder(of path: String, now: String) -> (live: Owner?, stale: Owner?) {
    var status = stat()
    var reference = stat()
    guard stat(path, &status) == 0 else { return (nil, nil) }
    let clock = stat(now, &reference) == 0 ? Double(reference.st_mtim.tv_sec) : Date().timeIntervalSince1970
    let age = clock - Double(status.st_mtim.tv_sec)
    guard let holder = read(path) else {
      // Unreadable (another user's: held) or not a lock of ours (only its age can tell).
      let unknown = Owner(host: "an unknown host", pid: 0, started: 0, command: "another process", token: "")
      return access(path, R_OK) != 0 || age < staleAfter ? (unknown, nil) : (nil, unknown)
    }
    let sameMachine =
      holder.host.caseInsensitiveCompare(hostName) == .orderedSame && holder.boot != nil && holder.boot == bootID
      && holder.pidNamespace == pidNamespace && holder.pid > 0
    if sameMachine {
      guard kill(holder.pid, 0) == 0 || errno == EPERM else { return (nil, holder) }  // no such process
      if let started = startTime(of: holder.pid), holder.started != 0, started != holder.started {
        return (nil, holder)
      }
      return (holder, nil)
    }
    return age < staleAfter ? (holder, nil) : (nil, holder)
  }

  /// This machine's name (gethostname: no name resolution).
  static let hostName: String = {
    var buffer = [CChar](repeating: 0, count: 256)
    return gethostname(&buffer, buffer.count) == 0 ? String(nulTerminated: buffer) : "localhost"
  }()

  /// The kernel's boot id (changes at every boot), if known.
  static let bootID: String? = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
    .trimmingCharacters(in: .whitespacesAndNewlines)

  /// This process's pid namespace ("pid:[4026531836]"), if known.
  static let pidNamespace: String? = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")

  /// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), if known.
  static func startTime(of pid: Int32) -> UInt64? {
    guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    // After "pid (comm)": state is field 3, start time field 22.
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 19 ? UInt64(fields[19]) : nil
  }
}

import ArgumentParser
import Foundation
import Tessera

struct SlurmCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "slurm",
    abstract: "Write a bash script that fuses on a SLURM cluster: a job array of parts, then finalize and verify.",
    discussion: """
      Run the script on a login node (`bash FILE`). It submits two jobs and prints their ids: \
      tessera-fuse, an array of --array tasks, task i running `tessera fuse … --part-count N \
      --resume --no-finalize` on part i of the output's chunks with --cpus-per-task threads and three quarters \
      of --mem as its --memory; and tessera-finalize, which starts once every task has succeeded (afterok) and \
      runs `tessera finalize` (pyramid, metadata), then `tessera verify`. If a task fails or runs out of time, \
      tessera-finalize is cancelled: run the script again and every part resumes, skipping the chunks already \
      written. The script refuses to submit while jobs of its last submission are still queued or running.

      With --refine, two jobs come first: tessera-pairs, an array registering the overlapping tile pairs \
      (`tessera refine-positions … --part-count N --pairs-out DIR`, half of --mem as its --memory), and \
      tessera-solve (`tessera refine-positions --solve DIR -o REFINED`); the fusion then reads REFINED, beside \
      the output. A rerun skips both once REFINED exists.

      The jobs run this tessera binary (or --tessera), with absolute paths to the dataset and the output, so \
      all three must be on a filesystem every node sees. The dataset is opened here first, so a bad path fails \
      now rather than in the queue. Options after `--` go to every `tessera fuse` task, except those the \
      script sets (-o, --part, --part-count, --resume, --overwrite, --no-finalize, --threads, --memory, \
      --dry-run). An existing script of the same name is replaced.

      Examples:
        tessera slurm project.xml -o /scratch/fused.zarr --array 32 --time 02:00:00
        tessera slurm tiles/*.h5 -o fused.zarr --mem 32G -- --blend max --codec zstd
        tessera slurm project.xml -o fused.zarr --refine --account lab42 --script a.sh
      """)

  @Argument(
    help: ArgumentHelp(
      "A .xml, a .json manifest, or HDF5 tile files; then, after --, options for every `tessera fuse`.",
      valueName: "dataset"))
  var positional: [String]

  @Option(name: .shortAndLong, help: "Output OME-Zarr directory, on a filesystem every node sees.")
  var output: String

  @Option(help: "Array tasks: the output is fused in this many parts, one per task.")
  var array: Int = 8

  @Option(help: "Partition (default: the cluster's default partition).")
  var partition: String?

  @Option(help: "Time limit of each job: [D-]HH:MM:SS, or MM, MM:SS, D-HH, D-HH:MM as sbatch takes it.")
  var time = "04:00:00"

  @Option(help: "Memory of each job, e.g. 16G, 4096M, or a number of MiB as in sbatch.")
  var mem = "16G"

  @Option(help: "CPUs of each job: the threads of every tessera step.")
  var cpusPerTask = 8

  @Option(help: "Account to charge (default: your default account).")
  var account: String?

  @Option(help: "Where to write the script (default: tessera-NAME.sh beside the output NAME.ome.zarr).")
  var script: String?

  @Option(help: "Directory for the jobs' logs (default: tessera-NAME-logs beside the output).")
  var logs: String?

  @Option(help: "The tessera binary the jobs run (default: this one).")
  var tessera: String?

  @Flag(help: "Refine the tile positions first (a pair-registration array, then a solve) and fuse the result.")
  var refine = false

  /// The dataset: the positional values before `--`.
  var dataset: [String] { Array(positional.dropLast(fuseOptions.count)) }

  /// The options for `tessera fuse`: the values after `--`. ArgumentParser gives them with the
  /// dataset's (in debug builds it refuses an argument array after another, even one taking
  /// `.postTerminator`), so they are counted on the command line: after its first `--`, which
  /// is always the terminator.
  var fuseOptions: [String] {
    let raw = CommandLine.arguments
    let count = raw.firstIndex(of: "--").map { raw.count - $0 - 1 } ?? 0
    return Array(positional.suffix(min(count, positional.count)))
  }

  /// Options the script sets itself, refused among the fuse options.
  static let reserved = [
    "-o", "--output", "--part", "--part-count", "--resume", "--overwrite", "--no-finalize", "--threads", "--memory",
    "--dry-run",
  ]

  func run() throws {
    let dataset = self.dataset
    let fuseOptions = self.fuseOptions
    guard !dataset.isEmpty else { throw UsageError("give the dataset before --") }
    guard array >= 1 else { throw UsageError("--array must be at least 1, got \(array)") }
    guard cpusPerTask >= 1 else { throw UsageError("--cpus-per-task must be at least 1, got \(cpusPerTask)") }
    guard Self.seconds(ofTimeLimit: time) != nil else {
      throw UsageError("--time: expected [D-]HH:MM:SS (or MM, MM:SS, D-HH, D-HH:MM), got \"\(time)\"")
    }
    let memMiB = try Self.mebibytes(mem)
    for (name, value) in [("--partition", partition), ("--account", account)] {
      if let value, value.isEmpty || value.contains(where: \.isWhitespace) {
        throw UsageError("\(name): expected a name without spaces, got \"\(value)\"")
      }
    }
    for option in fuseOptions {
      let name = String(option.prefix { $0 != "=" })
      if Self.reserved.contains(name) {
        throw UsageError("\(name) is set by the script; leave it out of the fuse options after --")
      }
    }
    let arguments = dataset + fuseOptions + [output, script, logs, tessera, partition, account].compactMap { $0 }
    if let bad = arguments.first(where: { $0.contains(where: \.isNewline) }) {
      throw UsageError("\"\(bad.oneLine)\" holds a line break, which a batch script cannot carry")
    }
    let datasetPaths = dataset.map(Self.absolute)
    _ = try DatasetLoader.open(datasetPaths)  // a bad dataset fails here, not in the queue
    let binary = try tessera.map(Self.absolute) ?? Self.ownExecutable()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: binary, isDirectory: &isDirectory), !isDirectory.boolValue,
      FileManager.default.isExecutableFile(atPath: binary)
    else {
      throw UsageError("--tessera: \(binary) is not an executable file")
    }
    let out = Self.absolute(output)
    let beside = (out as NSString).deletingLastPathComponent
    var name = (out as NSString).lastPathComponent
    for suffix in [".zarr", ".ome"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
    if name.isEmpty { name = "output" }
    let refinedFormat = dataset.count == 1 && dataset[0].lowercased().hasSuffix(".xml") ? "xml" : "json"
    let refined = beside + "/tessera-\(name)-refined.\(refinedFormat)"  // as refine-positions -o takes it
    let plan = SlurmScript(
      tessera: binary, dataset: datasetPaths, output: out, fuseOptions: fuseOptions, tasks: array,
      logs: logs.map(Self.absolute) ?? beside + "/tessera-\(name)-logs",
      directory: FileManager.default.currentDirectoryPath, partition: partition, account: account, time: time,
      memMiB: memMiB, cpus: cpusPerTask,
      refine: refine ? (pairs: beside + "/tessera-\(name)-pairs", refined: refined) : nil,
      commandLine: CommandLine.arguments.map(SlurmScript.quote).joined(separator: " "),
      path: script.map(Self.absolute) ?? beside + "/tessera-\(name).sh")
    let path = plan.path
    try AtomicFile.write(Data(plan.text.utf8), to: path)
    chmod(path, 0o755)
    let steps = refine ? "tessera-pairs and tessera-solve, then " : ""
    print(
      "wrote \(path): \(steps)\(array) tessera-fuse task\(array == 1 ? "" : "s") (\(cpusPerTask) CPUs, "
        + "\(memMiB)M, \(time) each), then tessera-finalize and verify; logs in \(plan.logs)")
    print("submit with: bash \(SlurmScript.quote(path))")
  }

  /// `path` made absolute against the current directory, `.` and `..` resolved.
  static func absolute(_ path: String) -> String {
    URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
      .standardizedFileURL.path
  }

  /// This process's executable, by absolute path.
  static func ownExecutable() throws -> String {
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
    if let path = Bundle.main.executablePath { return absolute(path) }
    throw UsageError("cannot tell where this tessera binary is; pass --tessera PATH")
  }

  /// Mebibytes of `--mem`: a size like 16G or 512M (as `parseBytes` reads it), or a bare number
  /// of MiB, as sbatch reads one.
  static func mebibytes(_ text: String) throws -> Int {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let bytes =
      trimmed.allSatisfy(\.isNumber) && !trimmed.isEmpty
      ? (Int(trimmed) ?? 0) << 20 : ((try? parseBytes(trimmed)) ?? 0)
    guard bytes >= 256 << 20 else {
      throw UsageError("--mem: expected a size of at least 256M, like 16G or 4096M (MiB), got \"\(text)\"")
    }
    return bytes >> 20
  }

  /// Seconds of a SLURM time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S); nil for anything else,
  /// and for 0.
  static func seconds(ofTimeLimit text: String) -> Int? {
    func number(_ s: Substring) -> Int? { !s.isEmpty && s.allSatisfy { ("0"..."9").contains($0) } ? Int(s) : nil }
    let dayAndClock = text.split(separator: "-", omittingEmptySubsequences: false)
    guard dayAndClock.count <= 2, let clock = dayAndClock.last else { return nil }
    let fields = clock.split(separator: ":", omittingEmptySubsequences: false)
    let values = fields.compactMap(number)
    let days = dayAndClock.count == 2 ? number(dayAndClock[0]) : 0
    guard let days, values.count == fields.count, (1...3).contains(values.count) else { return nil }
    // After days the clock starts at hours; without, one field is minutes and two are MM:SS.
    let withHours = dayAndClock.count == 2 || values.count == 3
    let (h, m, s) =
      withHours
      ? (values[0], values.count > 1 ? values[1] : 0, values.count > 2 ? values[2] : 0)
      : (0, values[0], values.count > 1 ? values[1] : 0)
    guard s < 60, m < 60 || !withHours else { return nil }
    let total = ((days * 24 + h) * 60 + m) * 60 + s
    return total > 0 ? total : nil
  }
}

/// The batch script `tessera slurm` writes: plain values in, bash text out.
struct SlurmScript {
  var tessera: String
  var dataset: [String]
  var output: String
  var fuseOptions: [String]
  var tasks: Int
  var logs: String
  /// The jobs' working directory (sbatch --chdir): where `tessera slurm` ran, so relative paths
  /// among the fuse options mean the same.
  var directory: String
  var partition: String?
  var account: String?
  var time: String
  var memMiB: Int
  var cpus: Int
  /// The pair registrations' directory and the refined dataset, with --refine.
  var refine: (pairs: String, refined: String)?
  var commandLine: String
  /// Where the script goes.
  var path: String

  /// `text` as one bash word: as it is when made of safe characters only, else single-quoted.
  static func quote(_ text: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=+,@%")
    if !text.isEmpty, text.allSatisfy(safe.contains) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  /// Words as one bash command line.
  static func line(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }

  /// The threads of a tessera step inside a job: the job's CPUs.
  var threads: String { "--threads \"${SLURM_CPUS_PER_TASK:-\(cpus)}\"" }

  /// One job's submission, `variable=$(sbatch …)`, with `body` as its batch script (a quoted
  /// here-document: nothing in it is expanded before the job runs).
  func submit(_ variable: String, _ options: [String], log: String, body: [String]) -> String {
    """
    \(variable)=$(sbatch --parsable "${job[@]}" \(options.joined(separator: " ")) --output="$logs/\(log)" <<'TESSERA_JOB'
    #!/usr/bin/env bash
    set -euo pipefail
    \(body.joined(separator: "\n"))
    TESSERA_JOB
    )
    \(variable)=${\(variable)%%;*}
    ids+=${ids:+,}$\(variable)
    """
  }

  var text: String {
    let t = Self.quote(tessera)
    let out = Self.quote(output)
    let lastTask = tasks - 1
    var job = ["--chdir=\(Self.quote(directory))", "--time=\(time)", "--mem=\(memMiB)M", "--cpus-per-task=\(cpus)"]
    if let partition { job.append("--partition=\(Self.quote(partition))") }
    if let account { job.append("--account=\(Self.quote(account))") }
    job.append("--open-mode=append")  // a requeued task adds to its log
    let fuseMemory = "--memory \(memMiB * 3 / 4)M"
    let fuseInput = refine.map { [$0.refined] } ?? dataset
    let fuse =
      "exec \(t) fuse \(Self.line(fuseInput)) -o \(out)\(fuseOptions.isEmpty ? "" : " " + Self.line(fuseOptions))"
    var step = 0
    func next() -> Int {
      step += 1
      return step
    }
    var steps = [String]()
    var overview = [String]()
    if let refine {
      let pairs = Self.quote(refine.pairs)
      let refined = Self.quote(refine.refined)
      overview += [
        "tessera-pairs     \(tasks) array tasks; task i registers part i of the overlapping tile pairs",
        "tessera-solve     solves for the tile positions, writes \(refine.refined)",
      ]
      steps.append(
        """
        # Registration is skipped when the refined dataset exists (delete it to register again).
        after=
        if [[ -e \(refined) ]]; then
          echo \(refined) "exists: tessera-pairs and tessera-solve skipped"
        else
        # Step \(next()), tessera-pairs: \(tasks) array tasks; task i registers part i of \(tasks) of the
        # overlapping tile pairs into the pairs directory.
        \(submit(
          "pairs", ["--job-name=tessera-pairs", "--array=0-\(lastTask)"], log: "pairs-%A_%a.log",
          body: [
            "exec \(t) refine-positions \(Self.line(dataset)) --part-count \(tasks) --pairs-out \(pairs) \(threads) "
              + "--memory \(memMiB / 2)M"
          ]))
        echo "tessera-pairs: array job $pairs, \(tasks) task\(tasks == 1 ? "" : "s")"

        # Step \(next()), tessera-solve: once every tessera-pairs task has succeeded, solves for the
        # tile positions and writes the refined dataset.
        \(submit(
          "solve", ["--job-name=tessera-solve", "--dependency=afterok:\"$pairs\"", "--kill-on-invalid-dep=yes"],
          log: "solve-%j.log", body: ["exec \(t) refine-positions --solve \(pairs) -o \(refined)"]))
        echo "tessera-solve: job $solve, after tessera-pairs"
        after=$solve
        fi
        """)
    }
    let waits = refine == nil ? [] : ["${after:+\"--dependency=afterok:$after\" --kill-on-invalid-dep=yes}"]
    overview += [
      "tessera-fuse      \(tasks) array tasks; task i fuses part i of \(tasks) of the output's chunks",
      "tessera-finalize  once every task has succeeded: pyramid and metadata, then verifies every chunk",
    ]
    steps.append(
      """
      # Step \(next()), tessera-fuse: \(tasks) array tasks; task i (SLURM_ARRAY_TASK_ID) fuses part i of
      # \(tasks) of the output's chunks, skipping those already recorded as complete (--resume), and
      # leaves the pyramid and metadata to tessera-finalize.
      \(submit(
        "fuse", ["--job-name=tessera-fuse", "--array=0-\(lastTask)"] + waits, log: "fuse-%A_%a.log",
        body: ["\(fuse) --part-count \(tasks) --resume --no-finalize \(threads) \(fuseMemory)"]))
      echo "tessera-fuse: array job $fuse, \(tasks) task\(tasks == 1 ? "" : "s"), logs $logs/fuse-${fuse}_*.log"

      # Step \(next()), tessera-finalize: once every tessera-fuse task has succeeded (afterok; cancelled
      # if one fails), builds the pyramid and the metadata, then checks every chunk against the
      # parts' journals.
      \(submit(
        "finalize", ["--job-name=tessera-finalize", "--dependency=afterok:\"$fuse\"", "--kill-on-invalid-dep=yes"],
        log: "finalize-%j.log", body: ["\(t) finalize \(out) \(threads)", "exec \(t) verify \(out)"]))
      echo "tessera-finalize: job $finalize, after tessera-fuse, log $logs/finalize-$finalize.log"
      """)
    return """
      #!/usr/bin/env bash
      # Fuses \(dataset.joined(separator: " ")) into \(output) on a SLURM cluster.
      # Written by tessera \(Tessera.version): \(commandLine)
      #
      # Run it on a login node: bash \(Self.quote(path))
      # It submits these jobs (logs in \(logs)):
      \(overview.enumerated().map { "#   \($0.offset + 1). \($0.element)" }.joined(separator: "\n"))
      # If a task fails or runs out of time, the jobs after it are cancelled. Run this script again: the
      # output is resumed, and the chunks already written are skipped.
      set -euo pipefail

      logs=\(Self.quote(logs))
      mkdir -p "$logs"
      # Every job's options.
      job=(\(job.joined(separator: " ")))

      # Jobs of the last submission still queued or running would write the same parts: refuse.
      if [[ -s $logs/jobs ]] && command -v squeue >/dev/null 2>&1; then
        active=$(squeue --noheader --format=%i --jobs="$(cat "$logs/jobs")" 2>/dev/null || true)
        if [[ -n $active ]]; then
          echo "jobs $(cat "$logs/jobs") of the last submission are still queued or running;" \\
            "wait for them (squeue --jobs=$(cat "$logs/jobs")) or scancel them, then run this again" >&2
          exit 1
        fi
      fi
      ids=

      \(steps.joined(separator: "\n\n"))
      echo "$ids" >"$logs/jobs"

      echo "follow with: squeue --jobs=$ids"
      echo "if a task fails or times out (the later jobs are then cancelled), run this script again:" \\
        "it resumes, finished chunks are skipped"

      """
  }
}

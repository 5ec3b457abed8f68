import ArgumentParser

/// `replay`: analysts' and auditors' tool over any Tally log.
@main
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Inspect, verify, replay and benchmark Tally event logs.",
        discussion: """
            Exit codes: 0 success (an intact log, for verify); 1 the log is damaged or differs \
            from the digest; 2 the log could not be opened or read; 64 bad usage.
            """,
        subcommands: [Stats.self, Chart.self, Unlocked.self, Rebuild.self, InspectCommand.self, ExportCommand.self, ImportCommand.self, Verify.self, Repair.self, Digest.self, Prove.self, CheckProof.self, Keygen.self, Generate.self, Bench.self, AppendUntilKilled.self, AppendLoad.self]
    )
}

extension Replay {
    /// ArgumentParser's main, plus one rule: a command that read a damaged log's intact
    /// prefix (see `openLog`) and may have missed events past the damage exits 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
        if DamagedPrefix.missedEvents { exit(withError: ReplayExit.damaged) }
    }
}

/// Process exit codes scripts can rely on.
enum ReplayExit {
    static let damaged = ExitCode(1)
    static let unreadable = ExitCode(2)
}

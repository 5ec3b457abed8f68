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
        subcommands: [Stats.self, Chart.self, Unlocked.self, Rebuild.self, InspectCommand.self, ExportCommand.self, ImportCommand.self, Verify.self, Digest.self, Generate.self, Bench.self, AppendUntilKilled.self, AppendLoad.self]
    )
}

/// Process exit codes scripts can rely on.
enum ReplayExit {
    static let damaged = ExitCode(1)
    static let unreadable = ExitCode(2)
}

import ArgumentParser
import EventLog
import Events

/// `--since`, `--until`, `--from-position`, `--until-position`: the one vocabulary every
/// reading command (stats, unlocked, inspect, export) uses for the part of the log it reads,
/// with the same bounds everywhere, so a range given to `stats` selects exactly the events
/// `export` writes for it.
struct RangeOptions: ParsableArguments {
    /// The bounds, as each command's help repeats them.
    static let vocabulary = """
        --since T is inclusive (recorded at or after T), --until T exclusive (recorded before \
        T); both take 2026-11-25T14:03:07Z (fraction up to 6 digits, Z or ±HH:MM) or a date, \
        meaning its midnight UTC. --from-position P and --until-position P are both inclusive. \
        --until and --until-position exclude each other.
        """

    @Option(help: "Only events recorded at or after this time (inclusive; ISO 8601 UTC or a date).") var since: String?
    @Option(help: "Only events recorded before this time (exclusive; ISO 8601 UTC or a date).") var until: String?
    @Option(help: "Only events at or after this position (inclusive).") var fromPosition: UInt64?
    @Option(help: "Only events up to and including this position (inclusive).") var untilPosition: UInt64?
    /// The old `stats` spelling, kept so scripts keep working: inclusive, i.e. `--until`
    /// one microsecond later.
    @Option(help: .hidden) var untilTime: String?

    func validate() throws {
        var selection = EventSelection()
        try apply(to: &selection)
    }

    /// Sets the selection's bounds; throws `ValidationError` (exit 64) for a bad time or
    /// contradictory bounds.
    func apply(to s: inout EventSelection) throws {
        if until != nil && untilTime != nil { throw ValidationError("give --until (exclusive) or the older --until-time (inclusive), not both") }
        if (until != nil || untilTime != nil) && untilPosition != nil {
            throw ValidationError("give --until or --until-position, not both")
        }
        s.since = try since.map { try EventSelection.time($0, option: "--since") }
        s.until = try until.map { try EventSelection.time($0, option: "--until") }
        if let untilTime { s.until = try EventSelection.time(untilTime, option: "--until-time") + 1 }
        if let since = s.since, let until = s.until, since >= until {
            throw ValidationError("--since must be before --until")
        }
        s.fromPosition = max(1, fromPosition ?? 1)
        s.untilPosition = untilPosition
        DamagedPrefix.asked(until: untilPosition)
    }

    func selection() throws -> EventSelection {
        var s = EventSelection()
        try apply(to: &s)
        return s
    }
}

extension EventSelection {
    /// Folds the selected events through `apply`, for the view commands. Returns the
    /// position of the last event folded (0 when none): the position the view is as of,
    /// which is not the head when the range ends earlier. A read failure is exit 2.
    func fold(_ store: any EventStore, target: LogOption, progress: Progress, _ apply: (RecordedEvent) -> Void) async throws -> LogPosition {
        var position: LogPosition = 0
        var count = 0
        do {
            try await forEach(in: store) { event in
                apply(event)
                position = event.position
                count += 1
                if count & 0x3FFF == 0 { progress.update(position) }
            }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        return position
    }
}

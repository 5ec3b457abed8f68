import Dispatch
import Synchronization
import TallyTestSupport
import Testing
@testable import EventLog

/// The PostgreSQL log's ordering guarantee under real concurrency: separate writer
/// processes, each group-committing, while readers tail. A reader that passed a position a
/// slower transaction filled later would miss it or see it out of order; every reader here
/// must see every position exactly once, in order, with each stream's versions gap-free.
@Suite(.timeLimit(.minutes(5))) struct PostgresOrderingTests {
    static let writers = 8
    static let eventsPerWriter = 50_000

    /// What one tailing reader checked as the events went by.
    struct Tally: Sendable {
        var count = 0
        var lastPosition: LogPosition = 0
        var outOfOrder: [String] = []
        var versions: [String: UInt64] = [:]
    }

    @Test func eightWriterProcessesAndFourTailingReadersAgreeOnOneGapFreeOrder() async throws {
        try await TestPostgres.withDatabase { url in
            let store = try PostgresLog(url: url, options: .init(readers: 4))
            let total = Self.writers * Self.eventsPerWriter
            let readers = (0..<4).map { _ in
                Task { () throws -> Tally in
                    var tally = Tally()
                    for try await batch in store.subscribe(from: 1).batches {
                        for event in batch {
                            if event.position != tally.lastPosition + 1, tally.outOfOrder.count < 5 {
                                tally.outOfOrder.append("position \(event.position) after \(tally.lastPosition)")
                            }
                            tally.lastPosition = event.position
                            let stream = event.stream
                            let expected = tally.versions[stream].map { $0 + 1 } ?? 0
                            if event.streamVersion != expected, tally.outOfOrder.count < 5 {
                                tally.outOfOrder.append("\(stream) version \(event.streamVersion) after \(expected)")
                            }
                            tally.versions[stream] = event.streamVersion
                            tally.count += 1
                        }
                        if tally.count >= total { break }
                    }
                    return tally
                }
            }
            let binary = try builtProduct("replay")
            let outputs = try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
                for writer in 0..<Self.writers {
                    group.addTask {
                        try await runProcess(binary, [
                            "append-load", "--log", url, "--writer", "\(writer)", "--events", "\(Self.eventsPerWriter)",
                            "--appenders", "16", "--batch", "\(10 + writer * 7)",
                        ])
                    }
                }
                return try await group.reduce(into: [ProcessOutput]()) { $0.append($1) }
            }
            for output in outputs {
                #expect(output.status == 0 && output.stdout.hasPrefix("DONE \(Self.eventsPerWriter)"), "\(output.stdout) \(output.stderr)")
            }
            for (i, reader) in readers.enumerated() {
                let tally = try await reader.value
                #expect(tally.count == total, "reader \(i)")
                #expect(tally.lastPosition == LogPosition(total), "reader \(i)")
                #expect(tally.outOfOrder.isEmpty, "reader \(i): \(tally.outOfOrder)")
                #expect(tally.versions.count == Self.writers * 16, "reader \(i) saw \(tally.versions.count) streams")
            }
            #expect(try await store.head().position == LogPosition(total))
            let report = try await store.verify()
            #expect(report.intact && report.events == UInt64(total))
            await store.close()
        }
    }
}

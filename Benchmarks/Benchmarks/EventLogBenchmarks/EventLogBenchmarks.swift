import Benchmark
import EventLog
import Foundation

/// Microbenchmarks of the embedded log through its public API. Figures that compare
/// configurations are taken as ratios within one run; see BENCHMARKS.md.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(5),
        maxIterations: 1_000
    )

    Benchmark("append 64 events, 1 appender, fsync never") { benchmark in
        let fixture = try Fixture(fsync: .never)
        let events = Fixture.events(64)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await fixture.log.append(to: "user-42", events: events))
        }
        benchmark.stopMeasurement()
        try await fixture.close()
    }

    Benchmark("append 64 events x 64 appenders, fsync never", configuration: .init(scalingFactor: .one)) { benchmark in
        let fixture = try Fixture(fsync: .never)
        let events = Fixture.events(64)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appender in 0..<64 {
                    group.addTask { _ = try await fixture.log.append(to: "user-\(appender)", events: events) }
                }
                try await group.waitForAll()
            }
        }
        benchmark.stopMeasurement()
        try await fixture.close()
    }

    Benchmark("read 100k events", configuration: .init(maxIterations: 50)) { benchmark in
        let fixture = try Fixture(fsync: .never)
        let events = Fixture.events(1_000)
        for i in 0..<100 { _ = try await fixture.log.append(to: "profile-p\(i)", events: events) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var count = 0
            for try await batch in fixture.log.read(from: 1).batches {
                for event in batch { count &+= event.payloadCount }
            }
            blackHole(count)
        }
        benchmark.stopMeasurement()
        try await fixture.close()
    }
}

/// A log in a fresh temporary directory, removed on close.
struct Fixture {
    let directory: String
    let log: FileLog

    init(fsync: FsyncPolicy) throws {
        directory = NSTemporaryDirectory() + "tally-benchmark-" + UUID().uuidString
        log = try FileLog(directory: directory, options: .init(fsync: fsync))
    }

    func close() async throws {
        try await log.close()
        try FileManager.default.removeItem(atPath: directory)
    }

    static func events(_ count: Int) -> [ProposedEvent] {
        (0..<count).map { i in
            ProposedEvent(
                type: i % 3 == 0 ? "CreatorSearched" : "PostAnalysisCompleted", actor: "service:ai-worker",
                correlationID: "c0ffee", payload: Array("fit.bayann:\(i):sentiment=0.\(i % 10)".utf8)
            )
        }
    }
}

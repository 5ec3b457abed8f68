import Foundation
import Synchronization
import TallyTestSupport
import Testing
@testable import EventLog

/// The one quantile formula every printed figure uses, and the neutral statistics both
/// backends report (seal failures included).
@Suite(.timeLimit(.minutes(5)))
struct StoreStatisticsTests {
    @Test func quantilesAreNearestRank() {
        let hundred = (1...100).map { UInt64($0) }
        #expect(quantiles([0, 0.5, 0.99, 1], of: hundred) == [1, 50, 99, 100])
        #expect(quantiles([0.5, 0.99], of: hundred.reversed()) == [50, 99], "order of the samples does not matter")
        #expect(quantile(0.5, of: [7]) == 7)
        #expect(quantile(0.99, of: [7]) == 7)
        #expect(quantiles([0.5, 0.99], of: [1, 2, 3, 4]) == [2, 4])
        #expect(quantiles([0.5], of: []) == [])
        #expect(quantile(0.5, of: []) == nil)
        // Always one of the samples, never interpolated.
        let samples: [UInt64] = [10, 1_000, 30, 20_000, 5]
        for q in stride(from: 0.0, through: 1.0, by: 0.05) {
            #expect(samples.contains(quantile(q, of: samples)!))
        }
    }

    @Test func recentSamplesKeepTheNewestOldestFirst() {
        var ring = RecentSamples(capacity: 3)
        #expect(ring.values == [])
        for value in 1...5 { ring.record(UInt64(value)) }
        #expect(ring.values == [3, 4, 5])
    }

    @Test func fileLogStatisticsCountCommitsSyncsAndBytes() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .always))
            for i in 0..<4 { _ = try await log.append(to: "stat-1", events: [textEvent("e\(i)"), textEvent("f\(i)")]) }
            let stats = log.statistics()
            #expect(stats.names == FileLog.statisticNames)
            #expect(stats.commits == 4 && stats.events == 8 && stats.syncs == 4 && stats.failedCommits == 0)
            #expect(stats.eventsPerCommit == 2)
            #expect(stats.recentSyncNanoseconds.count == 4)
            #expect(stats.syncMedianAndP99 != nil)
            #expect(stats.bytesStored == (try await log.storedBytes()))
            #expect(stats.sealFailures == 0 && stats.lastSealFailure == nil)
            try await log.close()
        }
    }

    @Test func aSealThatFailsIsCountedReportedAndRetried() async throws {
        try await withTemporaryDirectory { dir in
            let reported = Mutex<[EventLogError]>([])
            let log = try FileLog(
                directory: dir.path,
                options: .init(fsync: .never, segmentSize: 64 << 10, onSealFailure: { error in reported.withLock { $0.append(error) } })
            )
            // A directory where the first segment's index goes: renaming the index onto it fails.
            let first = try segmentNames(dir.path)[0]
            let blocker = dir.sub(SegmentNaming.indexName(forSegment: first))
            try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: false)
            // Incompressible payloads, so that three batches overfill a 64 KiB segment.
            var rng = SplitMix64(seed: 0x5EA1)
            for _ in 0..<3 {
                var proposed = textEvent("big")
                proposed.payload = (0..<(40 << 10)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                _ = try await log.append(to: "seal-1", events: [proposed])
            }
            // 40, 80, 120 KiB: the second and third batches each find the segment full. A seal is
            // tried after the batch is acknowledged, so wait for the second try.
            #expect(await eventually { log.statistics().sealFailures == 2 }, "\(log.statistics().sealFailures) seal failures")
            let stats = log.statistics()
            #expect(stats.lastSealFailure?.contains("could not seal segment \(first)") == true, "\(stats.lastSealFailure ?? "none")")
            #expect(await eventually { reported.withLock { $0.count } == 2 }, "onSealFailure was not told of each failure")
            #expect(reported.withLock { $0.first?.code } == .io)
            #expect(try segmentNames(dir.path) == [first], "nothing sealed while the index cannot be written")

            // Once the index can be written, the next batch seals the segment.
            try FileManager.default.removeItem(atPath: blocker)
            _ = try await log.append(to: "seal-1", events: [textEvent("after")])
            #expect(await eventually { (try? segmentNames(dir.path).count) == 2 }, "the segment was not sealed once it could be")
            #expect(log.statistics().sealFailures == 2, "\(log.statistics().lastSealFailure ?? "")")
            #expect(try await readAll(log).count == 4)
            try await log.close()
        }
    }
}

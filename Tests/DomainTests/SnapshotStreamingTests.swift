import EventLog
import Events
import Foundation
import TallyTestSupport
import Testing
@testable import Projections

/// `SnapshotStore.load` checks a file whole, then decodes it as it reads it again chunk by
/// chunk (`SnapshotChunks`): a state of many chunks, whose strings and runs straddle chunk
/// boundaries, loads as it was saved; a damaged or truncated file is refused with a reason;
/// a file changed after its check is refused, not misread.
@Suite(.timeLimit(.minutes(5))) struct SnapshotStreamingTests {
    /// Many distinct profiles and posts with long ids, so that the state spans many chunks.
    private func manyDistinctEvents(count: Int) -> [TimedEvent] {
        (0..<count).map { i in
            let name = "creator.name.\(i % 5_000)"
            let at = RandomEvents.start + Int64(i) * 1_000_000
            switch i % 4 {
            case 0:
                return TimedEvent(.profileUnlocked(.init(user: "user-\(i % 700)", username: name, creditsSpent: 1)), at: at)
            case 1:
                return TimedEvent(.postAnalysisFailed(.init(username: name, postID: "post-\(i)-\(String(repeating: "x", count: i % 23))",
                                                             error: "timeout", durationMs: i % 3_000)), at: at)
            default:
                return TimedEvent(.postAnalysisCompleted(.init(username: name, postID: "post-\(i)-\(String(repeating: "y", count: i % 29))",
                                                                sentiment: 0.5, language: "en", category: "art", durationMs: i % 4_000)), at: at)
            }
        }
    }

    @Test func aStateOfManyChunksLoadsAsItWasSaved() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(manyDistinctEvents(count: 40_000), chunk: 500)
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            let stats = try await SystemStatsProjection.rebuild(from: fixture.log)
            let unlocked = try await UnlockedProfilesProjection.rebuild(from: fixture.log)
            try store.save(stats.projection, position: stats.position, recordedAt: stats.recordedAt)
            try store.save(unlocked.projection, position: unlocked.position, recordedAt: unlocked.recordedAt)

            for name in [SystemStatsProjection.name, UnlockedProfilesProjection.name] {
                guard case .valid(let chunks) = SnapshotStore.openFile(atPath: store.path(for: name)) else {
                    Issue.record("\(name): the saved file does not open")
                    continue
                }
                #expect(chunks.framing.chunks.count >= 8, "\(name): \(chunks.framing.chunks.count) chunks (\(chunks.framing.stateBytes) bytes), the test needs many; \(stats.position)")
            }
            let loadedStats = store.load(SystemStatsProjection.self)
            #expect(loadedStats.ignored.isEmpty, "\(loadedStats.ignored)")
            #expect(loadedStats.projection.makeView() == stats.projection.makeView())
            let loadedUnlocked = store.load(UnlockedProfilesProjection.self)
            #expect(loadedUnlocked.ignored.isEmpty, "\(loadedUnlocked.ignored)")
            #expect(loadedUnlocked.projection.makeView() == unlocked.projection.makeView())

            // The same bytes decoded whole in memory give the same state.
            guard case .valid(let whole) = SnapshotStore.readFile(atPath: store.path(for: SystemStatsProjection.name)) else {
                Issue.record("the saved file does not read whole")
                return
            }
            #expect(try SnapshotStore.decodeState(SystemStatsProjection.self, from: whole).makeView() == stats.projection.makeView())
        }
    }

    @Test func aDamagedOrTruncatedFileIsRefusedWithAReason() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 60, seed: 8))
            let rebuilt = try await SystemStatsProjection.rebuild(from: fixture.log)
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            try store.save(rebuilt.projection, position: rebuilt.position, recordedAt: rebuilt.recordedAt)
            let path = store.path(for: SystemStatsProjection.name)
            let bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
            func refused(_ file: [UInt8]) throws -> Bool {
                try Data(file).write(to: URL(fileURLWithPath: path))
                let load = store.load(SystemStatsProjection.self)
                return load.file == nil && load.position == 0 && load.ignored.count == 1
                    && load.projection.makeView() == SystemStatsProjection().makeView()
            }
            for index in bytes.indices {
                var damaged = bytes
                damaged[index] ^= 0x10
                #expect(try refused(damaged), "flipping a bit of byte \(index) of \(bytes.count) went unnoticed")
            }
            for length in stride(from: 0, to: bytes.count, by: 7) {
                #expect(try refused(Array(bytes.prefix(length))), "truncated to \(length) of \(bytes.count) went unnoticed")
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(store.load(SystemStatsProjection.self).file == path)
        }
    }

    @Test func aFileChangedAfterItsCheckIsRefused() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(manyDistinctEvents(count: 8_000), chunk: 500)
            let rebuilt = try await SystemStatsProjection.rebuild(from: fixture.log)
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            try store.save(rebuilt.projection, position: rebuilt.position, recordedAt: rebuilt.recordedAt)
            let path = store.path(for: SystemStatsProjection.name)
            guard case .valid(let chunks) = SnapshotStore.openFile(atPath: path) else {
                Issue.record("the saved file does not open")
                return
            }
            let second = try #require(chunks.framing.chunks.dropFirst().first, "the state needs two chunks")
            // Another writer changes a byte of the second chunk in place, after the check.
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try handle.seek(toOffset: UInt64(second.offset + 5))
            let old = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: UInt64(second.offset + 5))
            try handle.write(contentsOf: [old ^ 0x01])
            try handle.close()
            #expect {
                try SnapshotStore.decodeState(SystemStatsProjection.self, from: chunks)
            } throws: { error in
                (error as? ProjectionError)?.code == .corrupted && "\(error)".contains("changed after it was checked")
            }
        }
    }
}

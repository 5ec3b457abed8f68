import Dispatch
import EventLog
import Events
import Foundation
import Synchronization
import TallyTestSupport
import Testing
@testable import Projections

/// Loading a snapshot: the bulk builders of the interning tables and pair sets give back
/// exactly what was written and refuse a repeat however far apart, and a runner loads off
/// the cooperative pool without changing what it publishes, when, or what it writes at stop.
@Suite(.timeLimit(.minutes(3))) struct SnapshotLoadingTests {
    /// A state holding one interning table, framed in memory and read back.
    static func decodeTable(_ write: (inout SnapshotWriter) -> Void) throws -> InternTable {
        var writer = SnapshotWriter(fd: -1, path: "", name: "table", version: 1, position: 1, recordedAt: 0)
        write(&writer)
        let file = try writer.finish()
        guard case .success(let snapshot) = SnapshotStore.decode(file) else { throw TestFailure("the framed state does not decode") }
        var reader = SnapshotReader(snapshot.payload, sections: snapshot.sections)
        let table = try InternTable(snapshot: &reader, section: 7, what: "string")
        try reader.finish()
        return table
    }

    /// Many strings (far more than one 8192-slot group): plain, packed hex post ids, and
    /// non-ASCII text.
    static func strings(_ count: Int) -> [String] {
        var rng = SplitMix64(seed: 7)
        return (0..<count).map { i in
            switch i % 3 {
            case 0: "creator.\(i)"
            case 1: "p\(i)" + String(UInt64.random(in: 0...UInt64.max, using: &rng) | 1 << 63, radix: 16)
            default: i % 300 == 2 ? "caf\u{E9}-\(i)" : "u\(i)"
            }
        }
    }

    @Test func aLargeTableRoundTripsWithTheSameIdsAndKeepsInterning() throws {
        let strings = Self.strings(40_000)
        var table = InternTable()
        for string in strings { _ = table.intern(string) }
        let loaded = try Self.decodeTable { table.write(to: &$0, section: 7) }
        #expect(loaded == table && loaded.count == strings.count)
        for (id, string) in strings.enumerated() {
            #expect(loaded.lookup(string) == UInt32(id), "\(string)")
        }
        #expect(loaded.lookup("creator.40000") == nil && loaded.lookup("cafe\u{301}-2") == UInt32(2), "canonically equal text finds its id")
        var grown = loaded
        for i in 0..<20_000 { #expect(grown.intern("new-\(i)") == UInt32(strings.count + i)) }
        for (id, string) in strings.enumerated().filter({ $0.offset % 97 == 0 }) { #expect(grown.lookup(string) == UInt32(id)) }
    }

    @Test(arguments: [(5, 39_999), (0, 1), (12_345, 23_456)])
    func aStringRepeatedFarApartIsRefused(first: Int, second: Int) throws {
        var strings = Self.strings(40_000)
        strings[second] = strings[first]
        do {
            _ = try Self.decodeTable { w in
                w.section(7, count: strings.count)
                for string in strings {
                    w.unsigned(UInt64(string.utf8.count) << 1)
                    w.raw(Array(string.utf8))
                }
            }
            Issue.record("a table holding \(strings[first]) twice was accepted")
        } catch let error as ProjectionError {
            #expect(error.code == .corrupted && error.message.contains("appears twice"), "\(error)")
        }
    }

    /// Inserted one by one, through every growth (at 3/4 full), a pair set holds exactly
    /// the distinct pairs, and equals the set loaded from them at once.
    @Test func pairSetsGrowWithoutLosingAPair() {
        var rng = SplitMix64(seed: 9)
        var set = IDPairSet()
        var expected = Set<UInt64>()
        for _ in 0..<120_000 {
            let a = UInt32.random(in: 0..<3_000, using: &rng), b = UInt32.random(in: 0..<60_000, using: &rng)
            let isNew = expected.insert(UInt64(a) << 32 | UInt64(b)).inserted
            #expect(set.insert(a, b) == isNew)
        }
        #expect(set.count == expected.count)
        #expect(expected.allSatisfy { set.contains(UInt32($0 >> 32), UInt32(truncatingIfNeeded: $0)) })
        #expect(!set.contains(3_000, 0) && !set.contains(0, 60_000))
        #expect(IDPairSet.loading(Array(expected)).set == set)
    }

    @Test func pairSetsLoadEveryPairAndFindARepeat() {
        var rng = SplitMix64(seed: 5)
        var keys = Set<UInt64>()
        while keys.count < 50_000 { keys.insert(UInt64(UInt32.random(in: 0..<5_000, using: &rng)) << 32 | UInt64(UInt32.random(in: 0..<90_000, using: &rng))) }
        let ordered = Array(keys)
        let (set, repeated) = IDPairSet.loading(ordered)
        #expect(repeated == nil && set.count == ordered.count)
        #expect(ordered.allSatisfy { set.contains(UInt32($0 >> 32), UInt32(truncatingIfNeeded: $0)) })
        #expect(!set.contains(5_000, 0) && !set.contains(0, 90_000))
        var withRepeat = ordered
        withRepeat.insert(ordered[31_337], at: 17)
        #expect(IDPairSet.loading(withRepeat).duplicate == ordered[31_337])
        #expect(IDPairSet.loading([]).set.count == 0)
    }

    /// Holds a runner's load on its loading thread until opened.
    final class Hold: Sendable {
        private let opened = DispatchSemaphore(value: 0)
        private let entered = Atomic<Bool>(false)
        func hold() {
            entered.store(true, ordering: .releasing)
            _ = opened.wait(timeout: .now() + .seconds(60))
        }
        func open() { opened.signal() }
        var isHolding: Bool { entered.load(ordering: .acquiring) }
    }

    /// A snapshot of the first 120 events, written by a runner at its stop.
    static func snapshotAt120(_ fixture: ViewFixture, _ events: [TimedEvent]) async throws -> SnapshotStore {
        try await fixture.append(Array(events[0..<120]), chunk: 10)
        let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
        let first = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: snapshots)
        let running = Task { try await first.run() }
        #expect(await first.waitForPosition(120, timeout: .seconds(30)))
        running.cancel()
        try await running.value
        return snapshots
    }

    @Test func whileTheSnapshotLoadsTheEmptyViewIsServedAndWaitersWakeOnceItIsLoaded() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 200, seed: 41)
            let snapshots = try await Self.snapshotAt120(fixture, events)
            try await fixture.append(Array(events[120...]), chunk: 10)
            let hold = Hold()
            let runner = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: snapshots) { event in
                if case .snapshotLoading = event { hold.hold() }
            }
            let running = Task { try await runner.run() }
            defer { hold.open() }
            try await waitUntil("the load began") { hold.isHolding }
            let waiter = Task { await runner.waitForPosition(200, timeout: .seconds(60)) }
            #expect(runner.current.position == 0 && runner.state == .catchingUp)
            #expect(runner.current.view == SystemStatsProjection().makeView())
            hold.open()
            #expect(await waiter.value)
            let full = try await SystemStatsProjection.rebuild(from: fixture.log)
            try await waitUntil("live at the head") { runner.state == .live && runner.current.position == 200 }
            #expect(runner.current.view == full.projection.makeView())
            running.cancel()
            try await running.value
            guard case .valid(let written) = SnapshotStore.readFile(atPath: snapshots.path(for: SystemStatsProjection.name)) else {
                Issue.record("no snapshot at stop")
                return
            }
            #expect(written.position == 200)
            #expect(runner.waiterCount == 0)
        }
    }

    @Test func aRunnerStoppedWhileItLoadsReturnsAfterTheLoadAndWritesNothing() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 160, seed: 43)
            let snapshots = try await Self.snapshotAt120(fixture, events)
            try await fixture.append(Array(events[120...]), chunk: 10)
            let path = snapshots.path(for: SystemStatsProjection.name)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            let hold = Hold()
            let runner = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: snapshots) { event in
                if case .snapshotLoading = event { hold.hold() }
            }
            let running = Task { try await runner.run() }
            defer { hold.open() }
            try await waitUntil("the load began") { hold.isHolding }
            let waiter = Task { await runner.waitForPosition(160, timeout: .seconds(60)) }
            running.cancel()
            hold.open()
            try await running.value
            // Stopped before it folded anything past its snapshot: the files are as they were,
            // no earlier one was left as `.prev`, and the waiter was let go.
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            #expect(!FileManager.default.fileExists(atPath: snapshots.previousPath(for: SystemStatsProjection.name)))
            #expect(await waiter.value == false)
            #expect(runner.waiterCount == 0)
        }
    }
}

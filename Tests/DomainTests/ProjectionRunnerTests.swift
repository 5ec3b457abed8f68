import EventLog
import Foundation
import Synchronization
import TallyTestSupport
import Testing
@testable import Projections

/// The runner folds the log exactly once per position, from the newest usable snapshot,
/// publishes as it goes, survives bad snapshots and store failures, and stops on cancel.
@Suite(.timeLimit(.minutes(5))) struct ProjectionRunnerTests {
    protocol ToyVersion: Sendable { static var number: Int { get } }
    enum V1: ToyVersion { static var number: Int { 1 } }
    enum V2: ToyVersion { static var number: Int { 2 } }

    /// Counts events per type, sums the decimal payloads, and records every position it folds.
    struct Toy<V: ToyVersion>: Projection, Equatable {
        static var name: String { "toy-counts" }
        static var version: Int { V.number }
        var perType: [String: Int] = [:]
        var sum: Int64 = 0
        var positions: [LogPosition] = []
        /// Events folded by this instance since `init` (not snapshotted): shows where a run began.
        var foldedSinceStart = 0

        init() {}
        func writeSnapshot(to w: inout SnapshotWriter) {
            w.section(1, count: perType.count)
            for (type, count) in perType {
                w.string(type)
                w.signed(count)
            }
            w.section(2, count: positions.count)
            w.signed(sum)
            for position in positions { w.unsigned(position) }
        }
        init(snapshot r: inout SnapshotReader) throws {
            for _ in 0..<(try r.section(1, minimumBytes: 2)) { perType[try r.string("type")] = try r.int("count") }
            let count = try r.section(2, minimumBytes: 1)
            sum = try r.signed("sum")
            for _ in 0..<count { positions.append(try r.unsigned("position")) }
        }
        mutating func apply(_ event: RecordedEvent) {
            perType[event.type, default: 0] += 1
            sum += event.withPayload { Int64(String(decoding: $0, as: UTF8.self)) ?? 0 }
            positions.append(event.position)
            foldedSinceStart += 1
        }
        func makeView() -> Self { self }
        static func == (a: Self, b: Self) -> Bool { a.perType == b.perType && a.sum == b.sum && a.positions == b.positions }
    }

    typealias Runner<V: ToyVersion> = ProjectionRunner<Toy<V>, FileLog>

    final class Recorder: Sendable {
        private let events = Mutex<[ProjectionRunnerEvent]>([])
        var all: [ProjectionRunnerEvent] { events.withLock { $0 } }
        func record(_ event: ProjectionRunnerEvent) { events.withLock { $0.append(event) } }
        var transitions: [String] {
            all.compactMap { if case .stateChanged(let a, let b) = $0 { "\(a.rawValue)->\(b.rawValue)" } else { nil } }
        }
        var loaded: [LogPosition] { all.compactMap { if case .snapshotLoaded(_, let p) = $0 { p } else { nil } } }
        var written: [LogPosition] { all.compactMap { if case .snapshotWritten(let p) = $0 { p } else { nil } } }
        var ignored: [String] { all.compactMap { if case .snapshotIgnored(let r) = $0 { r } else { nil } } }
    }

    // MARK: - Helpers

    static let baseTime: Int64 = 1_700_000_000_000_000

    /// Appends events with values `values` (value i lands at position i when values start at
    /// the head + 1), `perAppend` to a batch; types cycle A, B, C.
    static func append(_ log: FileLog, _ values: ClosedRange<Int>, perAppend: Int = 10) async throws {
        var next = values.lowerBound
        while next <= values.upperBound {
            let chunk = next...min(values.upperBound, next + perAppend - 1)
            let events = chunk.map { i in
                ProposedEvent(type: ["A", "B", "C"][i % 3], recordedAt: baseTime + Int64(i) * 1_000, payload: Array("\(i)".utf8))
            }
            _ = try await log.append(to: "toy-\(next % 4)", events: events)
            next = chunk.upperBound + 1
        }
    }

    /// A fresh log in a temporary directory (removed afterwards) and a snapshot directory.
    static func withLog(_ body: (FileLog, SnapshotStore) async throws -> Void) async throws {
        let temporary = try TemporaryDirectory("projections")
        defer { temporary.remove() }
        let dir = temporary.path
        let log = try FileLog(directory: dir + "/log", options: .init(fsync: .never))
        do {
            try await body(log, SnapshotStore(directory: dir + "/snapshots"))
            try await log.close()
        } catch {
            try? await log.close()
            throw error
        }
    }

    final class Flag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
        func reset() { value.withLock { $0 = false } }
    }

    /// A running runner and the means to stop it.
    struct Running<V: ToyVersion> {
        let runner: Runner<V>
        let task: Task<Void, any Error>
        let finished: Flag

        /// Cancels the run and requires it to end within 10 s.
        func stop() async throws {
            task.cancel()
            let ended = await eventually(timeout: .seconds(10)) { finished.isSet }
            try #require(ended, "run() did not end after cancellation")
            try await task.value
        }

        func waitLive(at position: LogPosition) async throws {
            let ok = await eventually { runner.state == .live && runner.current.position == position }
            try #require(ok, "not live at \(position): state \(runner.state), position \(runner.current.position)")
        }
    }

    static func start<V: ToyVersion>(_ version: V.Type, _ log: FileLog, _ snapshots: SnapshotStore?, _ recorder: Recorder = Recorder(),
                                     options: ProjectionRunnerOptions = .init(snapshotEveryEvents: 1_000_000)) -> Running<V> {
        let runner = Runner<V>(store: log, snapshots: snapshots, options: options, onEvent: recorder.record)
        let finished = Flag()
        let task = Task {
            defer { finished.set() }
            try await runner.run()
        }
        return Running(runner: runner, task: task, finished: finished)
    }

    /// What folding values 1...n must give.
    static func expected<V: ToyVersion>(_ n: Int, _: V.Type) -> Toy<V> {
        var toy = Toy<V>()
        for i in stride(from: 1, through: n, by: 1) {
            toy.perType[["A", "B", "C"][i % 3], default: 0] += 1
            toy.sum += Int64(i)
            toy.positions.append(LogPosition(i))
        }
        return toy
    }
}

extension ProjectionRunnerTests {
    @Test func catchesUpThenTailsFoldingEveryPositionOnce() async throws {
        try await Self.withLog { log, _ in
            try await Self.append(log, 1...200, perAppend: 7)
            let recorder = Recorder()
            let running = Self.start(V1.self, log, nil, recorder)
            // It may already be live here (a quick runner folds 200 events at once): the
            // recorded transition shows it started by catching up.
            try await running.waitLive(at: 200)
            #expect(recorder.transitions == ["catchingUp->live"])

            for k in 0..<10 { try await Self.append(log, 201 + k * 5...205 + k * 5, perAppend: 1 + k % 3) }
            let reached = await eventually { running.runner.current.position == 250 }
            try #require(reached, "tailing stopped at \(running.runner.current.position)")
            let published = running.runner.current
            #expect(published.view.positions == Array(1...250))
            #expect(published.view == Self.expected(250, V1.self))
            #expect(published.recordedAt == Self.baseTime + 250 * 1_000)
            #expect(running.runner.state == .live)
            #expect(try await Toy<V1>.rebuild(from: log).projection == published.view)
            try await running.stop()
            #expect(recorder.transitions == ["catchingUp->live"])
        }
    }

    @Test func emptyLogIsLiveAtPositionZero() async throws {
        try await Self.withLog { log, snapshots in
            let running = Self.start(V1.self, log, snapshots)
            try await running.waitLive(at: 0)
            #expect(running.runner.current.recordedAt == nil)
            try await running.stop()
            #expect(!FileManager.default.fileExists(atPath: snapshots.path(for: Toy<V1>.name)), "nothing folded, nothing to snapshot")
        }
    }

    @Test func cancelWritesASnapshotAndTheNextRunnerStartsFromIt() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...300)
            let first = Self.start(V1.self, log, snapshots)
            try await first.waitLive(at: 300)
            // run() must end after cancellation: if it did not, the suite's time limit fails the test.
            try await first.stop()
            guard case .valid(let snapshot) = SnapshotStore.readFile(atPath: snapshots.path(for: Toy<V1>.name)) else {
                Issue.record("no valid snapshot after cancel")
                return
            }
            #expect(snapshot.position == 300 && snapshot.version == 1 && snapshot.name == "toy-counts")
            #expect(snapshot.recordedAt == Self.baseTime + 300 * 1_000)

            try await Self.append(log, 301...400)
            let recorder = Recorder()
            let second = Self.start(V1.self, log, snapshots, recorder)
            try await second.waitLive(at: 400)
            let view = second.runner.current.view
            #expect(recorder.loaded == [300])
            #expect(view.foldedSinceStart == 100, "the fold must see only events after the snapshot")
            #expect(view.positions == Array(1...400))
            #expect(view == (try await Toy<V1>.rebuild(from: log)).projection)
            try await second.stop()
        }
    }

    @Test func snapshotsAreWrittenEveryNEventsOrTSeconds() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...100)
            let byCount = Recorder()
            let counted = Self.start(V1.self, log, snapshots, byCount, options: .init(snapshotEveryEvents: 25, snapshotEverySeconds: 3_600))
            try await counted.waitLive(at: 100)
            try await counted.stop()
            #expect(byCount.written.first == 30, "first batch reaching 25 events is the one ending at 30")
            #expect(byCount.written.last == 100)
            guard case .valid(let previous) = SnapshotStore.readFile(atPath: snapshots.previousPath(for: Toy<V1>.name)) else {
                Issue.record("the replaced snapshot was not kept")
                return
            }
            #expect(previous.position < 100)

            try await Self.append(log, 101...150)
            let byTime = Recorder()
            let timed = Self.start(V1.self, log, snapshots, byTime, options: .init(snapshotEveryEvents: 1_000_000, snapshotEverySeconds: 0))
            try await timed.waitLive(at: 150)
            try await timed.stop()
            #expect(byTime.written.first == 110, "with T = 0 the first batch already triggers a snapshot")
        }
    }

    @Test func corruptSnapshotsAreIgnoredAndTheViewIsRebuilt() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...120)
            let first = Self.start(V1.self, log, snapshots)
            try await first.waitLive(at: 120)
            try await first.stop()
            let path = snapshots.path(for: Toy<V1>.name)
            let good = [UInt8](try #require(FileManager.default.contents(atPath: path)))
            let full = try await Toy<V1>.rebuild(from: log).projection

            var flippedPayload = good
            flippedPayload[good.count - 5] ^= 0x20
            var flippedHeader = good
            flippedHeader[17] ^= 0x01
            let damaged: [(String, [UInt8])] = [
                ("payload byte flipped", flippedPayload), ("position byte flipped", flippedHeader),
                ("truncated to half", Array(good.prefix(good.count / 2))), ("truncated to 10 bytes", Array(good.prefix(10))),
                ("empty", []),
            ]
            for (label, bytes) in damaged {
                try? FileManager.default.removeItem(atPath: snapshots.previousPath(for: Toy<V1>.name))
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let recorder = Recorder()
                let running = Self.start(V1.self, log, snapshots, recorder)
                try await running.waitLive(at: 120)
                let view = running.runner.current.view
                try await running.stop()
                #expect(recorder.loaded.isEmpty, "\(label)")
                #expect(recorder.ignored.count == 1, "\(label): \(recorder.ignored)")
                #expect(view.foldedSinceStart == 120, "\(label)")
                #expect(view == full, "\(label)")
            }
        }
    }

    @Test func aDamagedNewestSnapshotFallsBackToThePreviousOne() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...60)
            let first = Self.start(V1.self, log, snapshots)
            try await first.waitLive(at: 60)
            try await first.stop()
            try await Self.append(log, 61...90)
            let second = Self.start(V1.self, log, snapshots)
            try await second.waitLive(at: 90)
            try await second.stop()
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: snapshots.path(for: Toy<V1>.name)))

            let recorder = Recorder()
            let third = Self.start(V1.self, log, snapshots, recorder)
            try await third.waitLive(at: 90)
            #expect(recorder.loaded == [60])
            #expect(third.runner.current.view.foldedSinceStart == 30)
            #expect(third.runner.current.view == Self.expected(90, V1.self))
            try await third.stop()
        }
    }

    /// A new version whose state still decodes the old snapshot serves the old view while it
    /// rebuilds, and never a partial rebuild: readers see the old position, then the head.
    @Test func anOlderVersionsViewIsServedWhileRebuilding() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...80)
            let v1 = Self.start(V1.self, log, snapshots)
            try await v1.waitLive(at: 80)
            try await v1.stop()
            try await Self.append(log, 81...3_000, perAppend: 7)

            let recorder = Recorder()
            let v2 = Self.start(V2.self, log, snapshots, recorder, options: .init(snapshotEveryEvents: 1_000_000, publishMinimumIntervalMilliseconds: 0))
            var seen: Set<LogPosition> = []
            let live = await eventually(timeout: .seconds(20)) {
                seen.insert(v2.runner.current.position)
                return v2.runner.state == .live && v2.runner.current.position == 3_000
            }
            try #require(live)
            #expect(seen.isSubset(of: [0, 80, 3_000]), "a partial rebuild was published: \(seen.sorted())")
            let served = recorder.all.compactMap { if case .previousVersionServed(let p) = $0 { p } else { nil } }
            #expect(served == [80])
            #expect(recorder.transitions == ["catchingUp->rebuilding", "rebuilding->live"])
            #expect(v2.runner.current.view == Self.expected(3_000, V2.self))
            try await v2.stop()
        }
    }

    @Test func otherVersionSnapshotsAreIgnored() async throws {
        try await Self.withLog { log, snapshots in
            try await Self.append(log, 1...80)
            let v1 = Self.start(V1.self, log, snapshots)
            try await v1.waitLive(at: 80)
            try await v1.stop()

            // Newer fold, older snapshot: rebuilt in the background, reported as `rebuilding`.
            let upgraded = Recorder()
            let v2 = Self.start(V2.self, log, snapshots, upgraded)
            try await v2.waitLive(at: 80)
            #expect(upgraded.loaded.isEmpty)
            #expect(upgraded.ignored.count == 1 && upgraded.ignored.first?.contains("version 1") == true, "\(upgraded.ignored)")
            #expect(upgraded.transitions == ["catchingUp->rebuilding", "rebuilding->live"])
            #expect(v2.runner.current.view.foldedSinceStart == 80)
            #expect(v2.runner.current.view == Self.expected(80, V2.self))
            try await v2.stop()
            guard case .valid(let written) = SnapshotStore.readFile(atPath: snapshots.path(for: Toy<V2>.name)) else {
                Issue.record("version 2 wrote no snapshot")
                return
            }
            #expect(written.version == 2 && written.position == 80)

            // Older fold, newer snapshot (a downgrade): ignored too, an ordinary catch-up.
            try FileManager.default.removeItem(atPath: snapshots.previousPath(for: Toy<V1>.name))
            let downgraded = Recorder()
            let back = Self.start(V1.self, log, snapshots, downgraded)
            try await back.waitLive(at: 80)
            #expect(downgraded.loaded.isEmpty && downgraded.ignored.count == 1)
            #expect(downgraded.transitions == ["catchingUp->live"])
            #expect(back.runner.current.view.foldedSinceStart == 80)
            try await back.stop()
        }
    }

    @Test func waitForPositionReturnsWhenReachedAndFalseOnTimeoutOrCancel() async throws {
        try await Self.withLog { log, _ in
            try await Self.append(log, 1...10)
            let running = Self.start(V1.self, log, nil)
            let runner = running.runner
            try await running.waitLive(at: 10)
            #expect(await runner.waitForPosition(10, timeout: .seconds(5)))

            let started = ContinuousClock.now
            #expect(await runner.waitForPosition(11, timeout: .milliseconds(50)) == false)
            #expect(ContinuousClock.now - started >= .milliseconds(50))

            let waiting = Task { await runner.waitForPosition(13, timeout: .seconds(60)) }
            let registered = await eventually { runner.waiterCount == 1 }
            try #require(registered)
            try await Self.append(log, 11...13)
            #expect(await waiting.value)

            // Timeouts far past the suite's time limit: a wait that did not end at once would
            // fail the test by the limit, however loaded the machine; no wall-clock bound here.
            let cancelled = Task { await runner.waitForPosition(1_000, timeout: .seconds(3_600)) }
            _ = await eventually { runner.waiterCount == 1 }
            cancelled.cancel()
            #expect(await cancelled.value == false)

            // Many concurrent waiters, some satisfied, some timing out: none left behind.
            await withTaskGroup(of: Void.self) { group in
                for k in 0..<50 {
                    group.addTask { _ = await runner.waitForPosition(k % 2 == 0 ? 14 : 10_000, timeout: .milliseconds(200)) }
                }
                group.addTask { try? await Self.append(log, 14...14) }
            }
            #expect(runner.waiterCount == 0)
            try await running.stop()
            #expect(await runner.waitForPosition(1_000, timeout: .seconds(3_600)) == false, "a stopped runner does not make readers wait")
        }
    }

    @Test func rebuildFoldsExactlyUpToAPosition() async throws {
        try await Self.withLog { log, _ in
            #expect(try await Toy<V1>.rebuild(from: log).position == 0)
            try await Self.append(log, 1...100, perAppend: 9)
            let upTo35 = try await Toy<V1>.rebuild(from: log, until: 35)
            #expect(upTo35.position == 35)
            #expect(upTo35.recordedAt == Self.baseTime + 35 * 1_000)
            #expect(upTo35.projection == Self.expected(35, V1.self))
            #expect(try await Toy<V1>.rebuild(from: log, until: 36).projection.positions == Array(1...36))
            #expect(try await Toy<V1>.rebuild(from: log, until: 0).projection.positions.isEmpty)
            let all = try await Toy<V1>.rebuild(from: log, until: 500)
            #expect(all.position == 100 && all.projection == Self.expected(100, V1.self))
        }
    }
}

// MARK: - Store failures and snapshot files

extension ProjectionRunnerTests {
    /// A `FileLog` whose reads and head fail while `down` is set, as a remote store would.
    struct FlakyStore: EventStore {
        struct Down: Error {}
        let log: FileLog
        let down: Flag

        func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
            try await log.append(appends, idempotencyKey: idempotencyKey)
        }
        func head() async throws -> LogHead {
            if down.isSet { throw Down() }
            return try await log.head()
        }
        func read(from position: LogPosition, filter: EventFilter?) -> Events { Events(inner: log.read(from: position, filter: filter), down: down) }
        func subscribe(from position: LogPosition) -> Events { Events(inner: log.subscribe(from: position), down: down) }
        func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
            try await log.readStream(stream, fromVersion: version, limit: limit)
        }
        func streamVersion(_ stream: String) async throws -> UInt64? { try await log.streamVersion(stream) }

        struct Events: EventSequence {
            typealias Element = RecordedEvent
            typealias Failure = any Error
            let inner: FileLogEvents
            let down: Flag
            func makeAsyncIterator() -> FileLogEvents.Iterator { inner.makeAsyncIterator() }
            var batches: Batches { Batches(inner: inner.batches, down: down) }
        }

        struct Batches: AsyncSequence, Sendable {
            typealias Element = [RecordedEvent]
            typealias Failure = any Error
            let inner: FileLogEvents.Batches
            let down: Flag
            func makeAsyncIterator() -> Iterator { Iterator(inner: inner.makeAsyncIterator(), down: down) }

            struct Iterator: AsyncIteratorProtocol {
                var inner: FileLogEvents.Batches.Iterator
                let down: Flag
                mutating func next() async throws -> [RecordedEvent]? {
                    if down.isSet { throw Down() }
                    return try await inner.next()
                }
            }
        }
    }

    @Test func storeFailureKeepsServingTheLastViewAndResumesWithoutGapOrDuplicate() async throws {
        try await Self.withLog { log, _ in
            try await Self.append(log, 1...20)
            let down = Flag()
            let recorder = Recorder()
            let runner = ProjectionRunner<Toy<V1>, FlakyStore>(
                store: FlakyStore(log: log, down: down), snapshots: nil,
                options: .init(retryDelays: [.milliseconds(5), .milliseconds(20)]), onEvent: recorder.record)
            let task = Task { try await runner.run() }
            defer { task.cancel() }
            let live = await eventually { runner.state == .live && runner.current.position == 20 }
            try #require(live)

            down.set()
            try await Self.append(log, 21...21)  // delivered by the read in progress; the next read fails
            let unavailable = await eventually { runner.state == .storeUnavailable }
            try #require(unavailable, "state \(runner.state)")
            #expect(runner.current.position == 21, "the last view keeps being served")
            try await Self.append(log, 22...45, perAppend: 4)
            let retried = await eventually { recorder.all.filter { if case .storeFailed = $0 { true } else { false } }.count >= 3 }
            #expect(retried)
            #expect(runner.current.position == 21)

            down.reset()
            let back = await eventually { runner.state == .live && runner.current.position == 45 }
            try #require(back, "state \(runner.state), position \(runner.current.position)")
            #expect(runner.current.view.positions == Array(1...45))
            #expect(runner.current.view == Self.expected(45, V1.self))
            #expect(runner.freshness(head: 45, headRecordedAt: Self.baseTime + 45_000).lagEvents == 0)
            task.cancel()
            try await task.value
        }
    }

    @Test func aSnapshotAheadOfTheLogIsFromAnotherLogAndIsRebuilt() async throws {
        try await Self.withLog { other, snapshots in
            try await Self.append(other, 1...50)
            let first = Self.start(V1.self, other, snapshots)
            try await first.waitLive(at: 50)
            try await first.stop()
            try await Self.withLog { log, _ in
                try await Self.append(log, 1...30)
                let recorder = Recorder()
                let running = Self.start(V1.self, log, snapshots, recorder)
                try await running.waitLive(at: 30)
                #expect(recorder.ignored.contains { $0.contains("behind the view's position 50") }, "\(recorder.ignored)")
                #expect(running.runner.current.view == Self.expected(30, V1.self))
                try await running.stop()
            }
        }
    }

    @Test func snapshotFilesRoundTripAndEveryDamageIsReportedNeverTrapped() throws {
        #expect(CRC32C.checksum(Array("123456789".utf8)[...]) == 0xE306_9283)
        let snapshot = Snapshot(name: "toy-counts", version: 3, position: 77, recordedAt: -5, payload: Array("{\"a\":1}".utf8))
        let bytes = SnapshotStore.encode(snapshot)
        #expect(try SnapshotStore.decode(bytes).get() == snapshot)
        let atZero = Snapshot(name: "x", version: 1, position: 0, recordedAt: nil, payload: [])
        #expect(try SnapshotStore.decode(SnapshotStore.encode(atZero)).get() == atZero)
        for index in bytes.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var damaged = bytes
                damaged[index] ^= bit
                guard case .failure(let error) = SnapshotStore.decode(damaged) else {
                    Issue.record("flipping bit \(bit) of byte \(index) went unnoticed")
                    continue
                }
                #expect(error.code == .corrupted)
            }
        }
        for length in 0..<bytes.count {
            #expect((try? SnapshotStore.decode(Array(bytes.prefix(length))).get()) == nil, "truncated to \(length)")
        }
        #expect((try? SnapshotStore.decode(bytes + [0]).get()) == nil, "trailing byte")
        #expect(throws: ProjectionError.self) { try SnapshotStore.validate(name: "../etc") }
        #expect(throws: ProjectionError.self) { try SnapshotStore.validate(name: "") }
        #expect(throws: ProjectionError.self) { try SnapshotStore.validate(name: ".hidden") }
        #expect(throws: Never.self) { try SnapshotStore.validate(name: "system-stats") }
    }
}

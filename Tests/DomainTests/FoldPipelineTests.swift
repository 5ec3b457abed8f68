import Dispatch
import EventLog
@testable import Events
import Foundation
@testable import Projections
import Synchronization
import TallyTestSupport
import Testing
@testable import replay

/// The hand-off's decisions, without threads.
@Suite struct BatchHandOffTests {
    typealias HandOff = BatchHandOff<Int, String>

    static func folded(_ action: HandOff.TakeAction) -> (Int, String?)? {
        if case .fold(let batch, let producer) = action { return (batch, producer) }
        return nil
    }

    static func isWait(_ action: HandOff.TakeAction) -> Bool { if case .wait = action { true } else { false } }
    static func isExit(_ action: HandOff.TakeAction) -> Bool { if case .exit = action { true } else { false } }
    static func isFull(_ action: HandOff.OfferAction) -> Bool { if case .full = action { true } else { false } }
    static func isAccepted(_ action: HandOff.OfferAction) -> Bool { if case .accepted = action { true } else { false } }

    @Test func aFullWindowParksTheProducerUntilTheSlowestLaneTakesTheOldest() {
        var handOff = HandOff(lanes: 2, capacity: 2)
        #expect(Self.isAccepted(handOff.offer(1)))
        #expect(Self.isAccepted(handOff.offer(2)))
        #expect(Self.isFull(handOff.offer(3)))
        #expect(handOff.parkProducer("producer") == nil)
        // The fast lane takes both; the window still holds them for the slow lane.
        #expect(Self.folded(handOff.take(lane: 0))! == (1, nil))
        #expect(Self.folded(handOff.take(lane: 0))! == (2, nil))
        #expect(Self.isWait(handOff.take(lane: 0)))
        #expect(handOff.waiting == 2)
        // The slow lane takes the oldest: room for one, and the producer is resumed.
        #expect(Self.folded(handOff.take(lane: 1))! == (1, "producer"))
        #expect(handOff.waiting == 1)
        #expect(Self.isAccepted(handOff.offer(3)))
        #expect(Self.isFull(handOff.offer(4)))
    }

    @Test func parkingWhenRoomAppearedMeanwhileResumesAtOnce() {
        var handOff = HandOff(lanes: 1, capacity: 1)
        #expect(Self.isAccepted(handOff.offer(1)))
        #expect(Self.isFull(handOff.offer(2)))
        _ = handOff.take(lane: 0)
        #expect(handOff.parkProducer("producer") == "producer")
    }

    @Test func finishingDrainsTheWindowThenEveryLaneExits() {
        var handOff = HandOff(lanes: 2, capacity: 4)
        _ = handOff.offer(1)
        _ = handOff.offer(2)
        handOff.finish()
        for lane in 0..<2 {
            #expect(Self.folded(handOff.take(lane: lane))?.0 == 1)
            #expect(Self.folded(handOff.take(lane: lane))?.0 == 2)
            #expect(Self.isExit(handOff.take(lane: lane)))
        }
        #expect(handOff.awaitCompletion("main") == nil)
        #expect(handOff.laneExited() == nil)
        guard let (waiter, outcome) = handOff.laneExited() else { Issue.record("no completion"); return }
        #expect(waiter == "main")
        guard case .finished = outcome else { Issue.record("outcome \(outcome)"); return }
    }

    @Test func aStopDropsTheWindowResumesTheProducerAndEndsEveryLane() {
        var handOff = HandOff(lanes: 2, capacity: 1)
        _ = handOff.offer(1)
        #expect(Self.isFull(handOff.offer(2)))
        #expect(handOff.parkProducer("producer") == nil)
        #expect(handOff.stop(.cancelled) == "producer")
        #expect(handOff.stop(.failed(TestFailure("later"))) == nil, "the first stop wins")
        #expect(handOff.waiting == 0)
        #expect(Self.isExit(handOff.take(lane: 0)))
        #expect(Self.isExit(handOff.take(lane: 1)))
        guard case .stopped(.cancelled) = handOff.offer(3) else { Issue.record("offer after a stop"); return }
        _ = handOff.laneExited()
        _ = handOff.laneExited()
        guard case .stopped(.cancelled)? = handOff.awaitCompletion("main") else { Issue.record("outcome"); return }
    }

    @Test func theWindowNeverHoldsMoreThanItsCapacity() {
        var rng = SplitMix64(seed: 7)
        var handOff = HandOff(lanes: 3, capacity: 3)
        var offered = 0
        var seen = [[Int]](repeating: [], count: 3)
        while offered < 500 || seen.contains(where: { $0.count < 500 }) {
            if offered < 500, Bool.random(using: &rng), Self.isAccepted(handOff.offer(offered)) { offered += 1 }
            if offered == 500 { handOff.finish() }
            let lane = Int.random(in: 0..<3, using: &rng)
            if let (batch, _) = Self.folded(handOff.take(lane: lane)) { seen[lane].append(batch) }
            #expect(handOff.waiting <= 3)
        }
        for lane in 0..<3 { #expect(seen[lane] == Array(0..<500)) }
    }
}

/// The pipelined fold against the sequential one, and its failure and cancellation paths.
@Suite(.timeLimit(.minutes(5))) struct FoldPipelineTests {
    /// `events` cut into batches of `size` (0: random sizes 1...64).
    static func batches(_ events: [RecordedEvent], size: Int, seed: UInt64) -> [[RecordedEvent]] {
        var rng = SplitMix64(seed: seed)
        var out: [[RecordedEvent]] = []
        var index = 0
        while index < events.count {
            let n = size > 0 ? size : Int.random(in: 1...64, using: &rng)
            out.append(Array(events[index..<min(events.count, index + n)]))
            index += n
        }
        return out
    }

    @Test(arguments: FoldOracleTests.seeds, [1, 3, 17, 64, 0])
    func threeLanesEqualTheSequentialFold(seed: UInt64, batchSize: Int) async throws {
        let events = FoldOracleTests.events(count: 1_200, seed: seed)
        let batches = Self.batches(events, size: batchSize, seed: seed)
        var (stats, unlocked, metrics) = (SystemStatsProjection(), UnlockedProfilesProjection(), MetricsProjection())
        for batch in batches {
            stats.apply(batch: batch)
            unlocked.apply(batch: batch)
            metrics.apply(batch: batch)
        }
        let s = LaneState(SystemStatsProjection()), u = LaneState(UnlockedProfilesProjection()), m = LaneState(MetricsProjection())
        // Capacity 2 with odd batch sizes: the reader is held back often.
        let pipeline = FoldPipeline(lanes: 3, capacity: 2)
        try await pipeline.run(lanes: [{ s.value.apply(batch: $0) }, { u.value.apply(batch: $0) }, { m.value.apply(batch: $0) }]) { feed in
            for batch in batches { try await feed.offer(batch) }
        }
        #expect(pipeline.runningThreads == 0)
        #expect(s.value.makeView() == stats.makeView())
        #expect(u.value.makeView() == unlocked.makeView())
        #expect(MetricsComparison(m.value) == MetricsComparison(metrics))
    }

    /// Through a real log whose segments seal on the way (small segments): the pipelined
    /// rebuilds and the replay tool's two-lane fold equal a sequential fold of the same read.
    @Test(arguments: [5, 404]) func foldsOfASealedLogEqualTheSequentialFold(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            try await fixture.log.close()
            let segments = fixture.directory + "/sealed"
            fixture.log = try FileLog(directory: segments, options: .init(fsync: .never, segmentSize: 64 << 10))
            let log = fixture.log
            try await fixture.append(RandomEvents.make(count: 12_000, seed: seed), chunk: 37)
            let segmentFiles = try FileManager.default.contentsOfDirectory(atPath: segments).filter { $0.hasSuffix(".seg") }
            #expect(segmentFiles.count > 2, "the log should span several sealed segments")
            var (stats, unlocked, metrics) = (SystemStatsProjection(), UnlockedProfilesProjection(), MetricsProjection())
            for try await batch in log.read(from: 1).batches {
                stats.apply(batch: batch)
                unlocked.apply(batch: batch)
                metrics.apply(batch: batch)
            }
            #expect(try await SystemStatsProjection.rebuild(from: log).projection.makeView() == stats.makeView())
            #expect(try await UnlockedProfilesProjection.rebuild(from: log).projection.makeView() == unlocked.makeView())
            #expect(MetricsComparison(try await MetricsProjection.rebuild(from: log).projection) == MetricsComparison(metrics))
            let half = try await SystemStatsProjection.rebuild(from: log, until: 6_001)
            #expect(half.position == 6_001)
            var views = ViewSet(Set(ViewName.allCases))
            try await views.fold(log) { _ in }
            #expect(views.position == 12_000 && views.events == 12_000)
            #expect(views.stats?.makeView() == stats.makeView())
            #expect(views.unlocked?.makeView() == unlocked.makeView())
            #expect(views.metrics.map(MetricsComparison.init) == MetricsComparison(metrics))
        }
    }

    struct ReadFailed: Error {}

    @Test func aStoreErrorMidwayIsThrownAndNoViewIsReturned() async throws {
        let events = FoldOracleTests.events(count: 600, seed: 1)
        let batches = Self.batches(events, size: 50, seed: 1)
        let folded = Atomic<Int>(0)
        let pipeline = FoldPipeline(lanes: 2, capacity: 2)
        let state = LaneState(SystemStatsProjection())
        await #expect(throws: ReadFailed.self) {
            try await pipeline.run(lanes: [{ state.value.apply(batch: $0) }, { _ in folded.add(1, ordering: .relaxed) }]) { feed in
                for (index, batch) in batches.enumerated() {
                    if index == 5 { throw ReadFailed() }
                    try await feed.offer(batch)
                }
            }
        }
        #expect(pipeline.runningThreads == 0)
        #expect(folded.load(ordering: .relaxed) <= 5)
    }

    @Test func aLaneErrorStopsTheReaderAndIsThrown() async throws {
        let pipeline = FoldPipeline(lanes: 2, capacity: 1)
        let offered = Atomic<Int>(0)
        await #expect(throws: ReadFailed.self) {
            try await pipeline.run(lanes: [{ _ in throw ReadFailed() }, { _ in }]) { feed in
                // An endless reader: only the lane's failure ends it.
                let batch = FoldOracleTests.events(count: 4, seed: 2)
                while true {
                    try await feed.offer(batch)
                    offered.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(pipeline.runningThreads == 0)
    }

    @Test func cancellingWhileTheLanesWaitForABatchStopsEveryThread() async throws {
        let pipeline = FoldPipeline(lanes: 2)
        let reading = Atomic<Bool>(false)
        let task = Task {
            try await pipeline.run(lanes: [{ _ in }, { _ in }]) { feed in
                try await feed.offer(FoldOracleTests.events(count: 3, seed: 3))
                reading.store(true, ordering: .releasing)
                // A read that never delivers again, like a tail of a quiet log.
                let (stream, _) = AsyncStream<[RecordedEvent]>.makeStream()
                for await batch in stream { try await feed.offer(batch) }
            }
        }
        try await waitUntil("the reader waits") { reading.load(ordering: .acquiring) && pipeline.runningThreads == 2 }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(pipeline.runningThreads == 0)
    }

    @Test func cancellingWhileTheReaderIsHeldBackStopsEveryThread() async throws {
        let pipeline = FoldPipeline(lanes: 1, capacity: 2)
        let gate = DispatchSemaphore(value: 0)
        let task = Task {
            try await pipeline.run(lanes: [{ _ in gate.wait() }]) { feed in
                let batch = FoldOracleTests.events(count: 3, seed: 4)
                while true { try await feed.offer(batch) }
            }
        }
        // One batch in the lane, two in the window: the reader is parked.
        try await waitUntil("the reader is held back") { pipeline.isProducerParked }
        // The cancellation handler runs within `cancel()`; then the lane finishes the batch it
        // holds and must exit instead of folding the two waiting (it would block again).
        task.cancel()
        gate.signal()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(pipeline.runningThreads == 0)
    }
}

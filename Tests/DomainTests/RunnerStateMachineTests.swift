import EventLog
import Testing
@testable import Projections

/// The runner's decisions, without a store, a task or a clock: states, publishing,
/// asking for the head, retry delays and snapshot timing.
@Suite struct RunnerStateMachineTests {
    typealias Machine = RunnerStateMachine
    static let t0 = ContinuousClock.now
    static let options = ProjectionRunnerOptions(snapshotEveryEvents: 100, snapshotEverySeconds: 60, publishMinimumIntervalMilliseconds: 20,
                                                 retryDelays: [.milliseconds(100), .milliseconds(250), .seconds(1)])

    static func machine(position: LogPosition = 0, rebuilding: Bool = false, servingPrevious: Bool = false) -> Machine {
        Machine(position: position, rebuilding: rebuilding, servingPrevious: servingPrevious, options: options, now: t0)
    }

    @Test func startsCatchingUpOrRebuildingOrServingThePreviousVersion() {
        #expect(Self.machine().started == .publish(.catchingUp))
        #expect(Self.machine(rebuilding: true).started == .publish(.rebuilding))
        #expect(Self.machine(rebuilding: true, servingPrevious: true).started == .publishPrevious)
    }

    @Test func anEmptyOrCaughtUpLogIsLiveAtOnce() {
        var empty = Self.machine()
        #expect(empty.subscribed(head: 0, position: 0, published: 0, now: Self.t0) == [.publish(.live)])
        var fromSnapshot = Self.machine(position: 50)
        #expect(fromSnapshot.subscribed(head: 50, position: 50, published: 50, now: Self.t0) == [.publish(.live)])
        #expect(fromSnapshot.live)
    }

    @Test func catchesUpThenAsksForTheHeadThenIsLive() {
        var machine = Self.machine()
        #expect(machine.subscribed(head: 30, position: 0, published: 0, now: Self.t0) == [.setState(.catchingUp)])
        #expect(!machine.needsHead(at: 10))
        // While catching up, publishing is rate-limited.
        #expect(machine.folded(now: Self.t0 + .milliseconds(5)) == nil)
        #expect(machine.folded(now: Self.t0 + .milliseconds(25)) == .publish(nil))
        #expect(machine.folded(now: Self.t0 + .milliseconds(30)) == nil)
        #expect(machine.needsHead(at: 30))
        // The log grew meanwhile: not live yet.
        machine.headAnswered(40, position: 30)
        #expect(!machine.live && !machine.needsHead(at: 35) && machine.needsHead(at: 40))
        machine.headAnswered(40, position: 40)
        #expect(machine.live)
        // Live: every batch is published, at once.
        #expect(machine.folded(now: Self.t0 + .milliseconds(31)) == .publish(.live))
        #expect(machine.folded(now: Self.t0 + .milliseconds(31)) == .publish(.live))
        #expect(!machine.needsHead(at: 41))
    }

    @Test func theOlderVersionIsServedUntilTheRebuildIsLive() {
        var machine = Self.machine(rebuilding: true, servingPrevious: true)
        #expect(machine.subscribed(head: 100, position: 0, published: 80, now: Self.t0) == [.setState(.rebuilding)])
        // Nothing of the partial rebuild is published, however long it takes.
        #expect(machine.folded(now: Self.t0 + .seconds(10)) == nil)
        machine.headAnswered(100, position: 100)
        #expect(machine.folded(now: Self.t0 + .seconds(11)) == .publish(.live))
        #expect(!machine.rebuilding)
    }

    @Test func anOlderVersionsViewAheadOfTheLogIsDropped() {
        var machine = Self.machine(rebuilding: true, servingPrevious: true)
        #expect(machine.subscribed(head: 10, position: 0, published: 80, now: Self.t0) == [.publish(.rebuilding), .setState(.rebuilding)])
        #expect(!machine.servingPrevious)
        // The partial rebuild is published as it grows again.
        #expect(machine.folded(now: Self.t0 + .milliseconds(25)) == .publish(nil))
    }

    @Test func aFoldAheadOfTheLogRestartsFromZeroAsARebuild() {
        var machine = Self.machine(position: 500)
        #expect(machine.subscribed(head: 20, position: 500, published: 500, now: Self.t0)
            == [.restart(head: 20, position: 500), .publish(.rebuilding), .setState(.rebuilding)])
        #expect(machine.rebuilding)
        var empty = Self.machine(position: 500)
        #expect(empty.subscribed(head: 0, position: 500, published: 500, now: Self.t0)
            == [.restart(head: 0, position: 500), .publish(.rebuilding), .publish(.live)])
    }

    @Test func storeFailuresBackOffThroughTheDelaysAndASubscriptionResetsThem() {
        var machine = Self.machine()
        let delays = (0..<5).map { _ in machine.failed() }
        #expect(delays.allSatisfy { $0.action == .setState(.storeUnavailable) })
        #expect(delays.map(\.retryIn) == [.milliseconds(100), .milliseconds(250), .seconds(1), .seconds(1), .seconds(1)])
        // Back: catching up again (at once live when nothing was missed), delays from the first.
        #expect(machine.subscribed(head: 0, position: 0, published: 0, now: Self.t0) == [.publish(.live)])
        #expect(machine.failed().retryIn == .milliseconds(100))
        var noDelays = Machine(position: 0, rebuilding: false, servingPrevious: false,
                               options: ProjectionRunnerOptions(retryDelays: []), now: Self.t0)
        #expect(noDelays.failed().retryIn == .seconds(1))
    }

    @Test func snapshotsAreDueEveryNEventsOrTSecondsOneAtATime() {
        var machine = Self.machine(position: 10)
        func due(_ position: LogPosition, after seconds: Int64, writing: Bool = false) -> Bool {
            machine.snapshotDue(at: position, now: Self.t0 + .seconds(seconds), writing: writing)
        }
        #expect(!due(10, after: 100), "nothing folded since the start")
        #expect(!due(109, after: 1))
        #expect(!due(110, after: 1, writing: true), "one snapshot at a time")
        #expect(due(110, after: 1))
        #expect(!due(111, after: 2))
        #expect(due(111, after: 61), "or after snapshotEverySeconds")
    }

    @Test func snapshotSpacingGrowsWithTheHistorySoACatchUpWritesFewSnapshots() {
        var machine = Self.machine(position: 0)
        var written: [LogPosition] = []
        for position in stride(from: LogPosition(10), through: 100_000, by: 10)
        where machine.snapshotDue(at: position, now: Self.t0, writing: false) {
            written.append(position)
        }
        // Every 100 events while the position is under 400, then a quarter of the last.
        #expect(written.prefix(4) == [100, 200, 300, 400])
        #expect(zip(written, written.dropFirst()).allSatisfy { $1 - $0 >= max(100, $0 / 4) })
        #expect(written.count < 40, "a fixed spacing of 100 would have written 1,000 snapshots: \(written.count)")
        // Live again after the catch-up: the clock still bounds how stale the snapshot gets.
        let last = written.last ?? 0
        let dueByTime = machine.snapshotDue(at: last + 10, now: Self.t0 + .seconds(61), writing: false)
        #expect(dueByTime)
    }
}

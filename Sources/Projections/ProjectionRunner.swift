public import EventLog
import Synchronization

/// Folds the log into one projection and publishes its view: starts from the newest valid
/// snapshot, catches up, then tails the log; readers get the latest published view at any
/// time, from any thread, without waiting for the fold.
///
/// The decisions (states, publishing, retries, snapshot timing) are `RunnerStateMachine`'s;
/// this class does the I/O they call for.
///
/// States: `catchingUp` until the fold first reaches the head the store reports, then
/// `live`. When the store fails, `storeUnavailable`: the last view keeps being served and
/// the runner re-reads from its position after a delay, without gap or duplicate; once back
/// it is `catchingUp` until it reaches the head again (at once if nothing was missed).
///
/// Version changes: the fold of an older version's snapshot cannot be continued (this build
/// folds differently), so the runner folds from the start of the log and reports
/// `rebuilding` until it reaches the head. Meanwhile it serves the old version's view when
/// that snapshot's state still decodes (the version changed the fold, not the state's
/// shape), stamped with the old snapshot's position, and publishes nothing of the partial
/// rebuild; otherwise it publishes the partial view as it grows. The older snapshot file
/// is replaced by the first snapshot of the new version.
public final class ProjectionRunner<P: Projection, Store: EventStore>: Sendable {
    public typealias Options = ProjectionRunnerOptions

    public let store: Store
    public let snapshots: SnapshotStore?
    /// Where the runner writes its as-of checkpoints (`options.checkpointEveryEvents`); nil: none.
    public let checkpoints: CheckpointStore?
    public let options: Options
    /// Rows of the view as of each interval end the fold passes (nil: none kept).
    public let intervalRows: IntervalRowsOptions<P.View>?
    private let onEvent: (@Sendable (ProjectionRunnerEvent) -> Void)?
    private let shared: Mutex<Shared>
    /// Read-your-writes waits, advanced as views are published; closed when the runner stops.
    private let waiters = PositionWaiters()

    private struct Shared {
        var published: Published<P.View>
        /// The rows as of `published`'s position.
        var rows: IntervalRows<P.View>?
        var state: ProjectionState = .catchingUp
        var started = false
        var writingSnapshot = false
        var writingCheckpoint = false
        /// Position of the newest snapshot of this version on disk, loaded or written.
        var snapshotPosition: LogPosition?
        /// The highest head the runner has seen: asked of the store, or folded past.
        var knownHead: LogPosition = 0
    }

    /// The fold itself; owned by `run()`, never shared.
    private struct Fold {
        var projection: P
        var position: LogPosition
        var recordedAt: Int64?
        /// When the next as-of checkpoint is due, and the largest recorded-at folded.
        var schedule: CheckpointSchedule
        /// A checkpoint due and not yet handed to a writer.
        var dueCheckpoint: CheckpointMark?
        var rows: IntervalRows<P.View>?

        init(projection: P, position: LogPosition, recordedAt: Int64?, options: Options, maxRecordedAt: Int64? = nil,
             rows: IntervalRows<P.View>? = nil) {
            self.projection = projection
            self.position = position
            self.recordedAt = recordedAt
            self.rows = rows
            schedule = CheckpointSchedule(everyEvents: options.checkpointEveryEvents, everyEventMicros: options.checkpointEveryEventMicros,
                                          position: position, maxRecordedAt: maxRecordedAt)
        }
    }

    /// `snapshots` nil: no snapshots, every start folds the whole log. `onEvent` hears about
    /// snapshots used or passed over, state changes and store failures (for logs and tests).
    public init(store: Store, snapshots: SnapshotStore?, checkpoints: CheckpointStore? = nil, options: Options = Options(),
                intervalRows: IntervalRowsOptions<P.View>? = nil, onEvent: (@Sendable (ProjectionRunnerEvent) -> Void)? = nil) {
        self.store = store
        self.snapshots = snapshots
        self.checkpoints = checkpoints
        self.options = options
        self.intervalRows = intervalRows
        self.onEvent = onEvent
        shared = Mutex(Shared(published: Published(view: P().makeView(), position: 0, recordedAt: nil)))
    }

    // MARK: - Readers

    /// The latest published view; one consistent value.
    public var current: Published<P.View> { shared.withLock { $0.published } }

    public var state: ProjectionState { shared.withLock { $0.state } }

    /// The latest published view with its interval rows, as of the same position (rows nil
    /// when the runner keeps none, or while an older version's view is served).
    public var currentWithRows: (published: Published<P.View>, rows: IntervalRows<P.View>?) {
        shared.withLock { ($0.published, $0.rows) }
    }

    /// The log's head as far as this runner knows, without asking the store: what reads
    /// compare their view with while the store is slow or down.
    public var knownHead: LogPosition { shared.withLock { max($0.knownHead, $0.published.position) } }

    /// How far the published view is behind `head`, from event times only.
    public func freshness(head: LogPosition, headRecordedAt: Int64?) -> Freshness {
        current(head: head, headRecordedAt: headRecordedAt).freshness
    }

    /// The view and its freshness read together, so they describe the same position.
    public func current(head: LogPosition, headRecordedAt: Int64?) -> (published: Published<P.View>, freshness: Freshness) {
        let (published, state) = shared.withLock { ($0.published, $0.state) }
        let freshness = Freshness(position: published.position, positionRecordedAt: published.recordedAt,
                                  head: head, headRecordedAt: headRecordedAt, state: state)
        return (published, freshness)
    }

    /// Read-your-writes: true once the published view includes `position`, false after
    /// `timeout`, on cancellation, or when the runner has stopped. Leaves nothing behind.
    /// The published view decides: a view that went back (a snapshot from another log was
    /// dropped) answers false at once rather than true.
    public func waitForPosition(_ position: LogPosition, timeout: Duration) async -> Bool {
        guard current.position < position else { return true }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.waiters.wait(until: position) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return current.position >= position
    }

    /// Waiters not yet resumed (for tests: none may be left behind).
    var waiterCount: Int { waiters.count }

    // MARK: - Running

    /// Runs the fold until the task is cancelled (or the store ends its subscription, as a
    /// closing store does), then writes a final snapshot and returns. Store failures are
    /// retried, never thrown; it throws only when called a second time.
    public func run() async throws {
        try shared.withLock { s in
            guard !s.started else { throw ProjectionError(.alreadyRunning, "run() was already called on this runner; make a new runner") }
            s.started = true
        }
        defer { waiters.close() }
        // Decoded off the cooperative pool; until it is done the view published is the empty
        // one at position 0 (`catchingUp`), which the API answers as a view not yet built.
        var (fold, previous, rebuilding) = await loadSnapshot()
        var machine = RunnerStateMachine(position: fold.position, rebuilding: rebuilding, servingPrevious: previous != nil,
                                         options: options, now: .now)
        perform(machine.started, &fold, previous: previous)
        var snapshotTask: Task<Void, Never>?
        var checkpointTask: Task<Void, Never>?
        while !Task.isCancelled {
            do {
                try await follow(&fold, &machine) { fold, machine in
                    if let checkpoints, let mark = fold.dueCheckpoint, !shared.withLock({ $0.writingCheckpoint }) {
                        shared.withLock { $0.writingCheckpoint = true }
                        fold.schedule.written(at: mark.position)
                        fold.dueCheckpoint = nil
                        let projection = fold.projection
                        checkpointTask = Task.detached { [self] in
                            await DedicatedThread.run { [self] in writeCheckpoint(projection, at: mark, to: checkpoints) }
                            shared.withLock { $0.writingCheckpoint = false }
                        }
                    }
                    guard let snapshots,
                          machine.snapshotDue(at: fold.position, now: .now, writing: shared.withLock({ $0.writingSnapshot }))
                    else { return }
                    shared.withLock { $0.writingSnapshot = true }
                    let (projection, position, recordedAt, rows) = (fold.projection, fold.position, fold.recordedAt, fold.rows)
                    let maxRecordedAt = fold.schedule.maxRecordedAt
                    snapshotTask = Task.detached { [self] in
                        await DedicatedThread.run { [self] in
                            writeSnapshot(projection, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt, rows: rows,
                                          to: snapshots)
                        }
                        shared.withLock { $0.writingSnapshot = false }
                    }
                }
                break
            } catch {
                if Task.isCancelled { break }
                let (action, delay) = machine.failed()
                perform(action, &fold)
                onEvent?(.storeFailed(reason: "\(error)", retryIn: delay))
                do { try await Task.sleep(for: delay) } catch { break }
            }
        }
        // In this order, each awaited: the periodic writes first, so the final snapshot is
        // the newest file and no write outlives `run()`.
        await snapshotTask?.value
        await checkpointTask?.value
        let stopped = fold
        if let checkpoints, let mark = stopped.dueCheckpoint {
            // Fell due while another was being written, and no batch came after.
            await DedicatedThread.run { [self] in writeCheckpoint(stopped.projection, at: mark, to: checkpoints) }
        }
        if let snapshots, stopped.position > 0, shared.withLock({ $0.snapshotPosition }) != stopped.position {
            await DedicatedThread.run { [self] in
                writeSnapshot(stopped.projection, position: stopped.position, recordedAt: stopped.recordedAt,
                              maxRecordedAt: stopped.schedule.maxRecordedAt, rows: stopped.rows, to: snapshots)
            }
        }
    }

    /// One subscription: from the fold's position to wherever the store ends it. Returns
    /// when the subscription ends (cancellation or a closed store); throws on store failure.
    private func follow(_ fold: inout Fold, _ machine: inout RunnerStateMachine,
                        afterBatch: (inout Fold, inout RunnerStateMachine) -> Void) async throws {
        let head = try await store.head().position
        noteHead(head)
        let published = shared.withLock { $0.published.position }
        for action in machine.subscribed(head: head, position: fold.position, published: published, now: .now) {
            perform(action, &fold)
        }
        for try await batch in store.subscribe(from: fold.position + 1).batches {
            guard let last = batch.last, last.position > fold.position else { continue }
            let events = batch[0].position > fold.position ? batch : Array(batch.drop { $0.position <= fold.position })
            guard events[0].position == fold.position + 1 else {
                throw ProjectionError(.gap, "the store delivered position \(events[0].position) after \(fold.position); re-reading")
            }
            if var rows = fold.rows {
                // Out of the fold while it changes, so the array is not copied.
                fold.rows = nil
                rows.fold(events, into: &fold.projection)
                fold.rows = rows
            } else {
                fold.projection.apply(batch: events)
            }
            fold.position = last.position
            fold.recordedAt = last.recordedAt
            // The schedule also keeps the largest recorded-at, which snapshots carry (`IntervalRows` needs it).
            if fold.schedule.folded(events), checkpoints != nil { fold.dueCheckpoint = fold.schedule.mark(after: last) }
            if machine.needsHead(at: fold.position) {
                let head = try await store.head().position
                noteHead(head)
                machine.headAnswered(head, position: fold.position)
            }
            if let action = machine.folded(now: .now) { perform(action, &fold) }
            afterBatch(&fold, &machine)
        }
    }

    /// Does what the state machine decided.
    private func perform(_ action: RunnerStateMachine.Action, _ fold: inout Fold, previous: RebuiltProjection<P>? = nil) {
        switch action {
        case .publish(let state):
            publish(fold, state: state)
        case .publishPrevious:
            guard let previous else { return }
            publish(Fold(projection: previous.projection, position: previous.position, recordedAt: previous.recordedAt, options: options),
                    state: .rebuilding)
            onEvent?(.previousVersionServed(position: previous.position))
        case .setState(let state):
            setState(state)
        case .restart(let head, let position):
            onEvent?(.snapshotIgnored(reason: "the log's head \(head) is behind the view's position \(position): "
                + "the snapshot came from another log; folding from the start"))
            fold = Fold(projection: P(), position: 0, recordedAt: nil, options: options, rows: freshRows(position: 0, maxRecordedAt: nil))
            shared.withLock { $0.snapshotPosition = nil }
        }
    }

    /// The fold to continue, an older version's state to serve meanwhile, if any, and
    /// whether the fold starts over because no snapshot of this version could be used. The
    /// files are read and decoded on a thread of their own (`DedicatedThread`), never on the
    /// cooperative pool; `snapshotLoading` is reported from that thread first.
    private func loadSnapshot() async -> (Fold, RebuiltProjection<P>?, rebuilding: Bool) {
        guard let snapshots else {
            return (Fold(projection: P(), position: 0, recordedAt: nil, options: options, rows: freshRows(position: 0, maxRecordedAt: nil)), nil, false)
        }
        let load = await DedicatedThread.run { [onEvent] in
            if let onEvent, let file = snapshots.existingFile(for: P.name) { onEvent(.snapshotLoading(file: file)) }
            return SnapshotStore.withLoadPermit { snapshots.load(P.self) }
        }
        for reason in load.ignored { onEvent?(.snapshotIgnored(reason: reason)) }
        if let file = load.file {
            shared.withLock { $0.snapshotPosition = load.position }
            onEvent?(.snapshotLoaded(file: file, position: load.position))
        }
        let rebuilding = load.file == nil && load.olderVersion != nil
        var rows = freshRows(position: load.position, maxRecordedAt: load.maxRecordedAt)
        if let intervalRows, load.file != nil {
            let found = await DedicatedThread.run {
                snapshots.loadRows(P.self, position: load.position, recordedAt: load.recordedAt, options: intervalRows)
            }
            switch found {
            case .success(let loaded): rows = loaded
            case .failure(let refusal): if let reason = refusal.reason { onEvent?(.snapshotIgnored(reason: reason)) }
            }
        }
        return (Fold(projection: load.projection, position: load.position, recordedAt: load.recordedAt, options: options,
                     maxRecordedAt: load.maxRecordedAt, rows: rows),
                rebuilding ? load.previous : nil, rebuilding)
    }

    /// Empty rows for a fold at `position` (nil when the runner keeps none).
    private func freshRows(position: LogPosition, maxRecordedAt: Int64?) -> IntervalRows<P.View>? {
        intervalRows.map { IntervalRows($0, position: position, maxRecordedAt: maxRecordedAt, emptyView: P().makeView()) }
    }

    private func writeSnapshot(_ projection: P, position: LogPosition, recordedAt: Int64?, maxRecordedAt: Int64?, rows: IntervalRows<P.View>?,
                               to snapshots: SnapshotStore) {
        do {
            try snapshots.save(projection, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt)
            // After the snapshot: rows are read only with the snapshot of their position.
            if let rows, let intervalRows { try snapshots.saveRows(rows, of: P.self, recordedAt: recordedAt, options: intervalRows) }
            shared.withLock { s in s.snapshotPosition = max(s.snapshotPosition ?? 0, position) }
            onEvent?(.snapshotWritten(position: position))
        } catch {
            onEvent?(.snapshotFailed(reason: "\(error)"))
        }
    }

    private func writeCheckpoint(_ projection: P, at mark: CheckpointMark, to checkpoints: CheckpointStore) {
        do {
            try checkpoints.save(projection, at: mark)
            onEvent?(.checkpointWritten(position: mark.position))
        } catch {
            onEvent?(.checkpointFailed(reason: "\(error)"))
        }
    }

    /// Publishes the fold's view (made outside the lock) and, when given, a new state; wakes
    /// the waiters it satisfies.
    private func publish(_ fold: Fold, state newState: ProjectionState?) {
        let published = Published(view: fold.projection.makeView(), position: fold.position, recordedAt: fold.recordedAt)
        let oldState: ProjectionState = shared.withLock { s in
            s.published = published
            s.rows = fold.rows
            let old = s.state
            if let newState { s.state = newState }
            return old
        }
        if let newState, newState != oldState { onEvent?(.stateChanged(from: oldState, to: newState)) }
        waiters.advance(to: published.position)
    }

    private func noteHead(_ head: LogPosition) {
        shared.withLock { $0.knownHead = max($0.knownHead, head) }
    }

    private func setState(_ newState: ProjectionState) {
        let old = shared.withLock { s in
            defer { s.state = newState }
            return s.state
        }
        if old != newState { onEvent?(.stateChanged(from: old, to: newState)) }
    }
}

public import EventLog
import Synchronization

/// Folds the log into one projection and publishes its view: starts from the newest valid
/// snapshot, catches up, then tails the log; readers get the latest published view at any
/// time, from any thread, without waiting for the fold.
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
    public let options: Options
    private let onEvent: (@Sendable (ProjectionRunnerEvent) -> Void)?
    private let shared: Mutex<Shared>

    private enum WaiterSlot {
        /// Allocated, not yet registered.
        case pending
        case waiting(LogPosition, CheckedContinuation<Bool, Never>)
        /// Cancelled before it registered.
        case cancelled
    }

    private struct Shared {
        var published: Published<P.View>
        var state: ProjectionState = .catchingUp
        var started = false
        var stopped = false
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: WaiterSlot] = [:]
        var writingSnapshot = false
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
        var rebuilding: Bool
        var live = false
        /// The old version's view is published; the rebuild publishes only once live.
        var servingPrevious = false
    }

    /// `snapshots` nil: no snapshots, every start folds the whole log. `onEvent` hears about
    /// snapshots used or passed over, state changes and store failures (for logs and tests).
    public init(store: Store, snapshots: SnapshotStore?, options: Options = Options(),
                onEvent: (@Sendable (ProjectionRunnerEvent) -> Void)? = nil) {
        self.store = store
        self.snapshots = snapshots
        self.options = options
        self.onEvent = onEvent
        shared = Mutex(Shared(published: Published(view: P().makeView(), position: 0, recordedAt: nil)))
    }

    // MARK: - Readers

    /// The latest published view; one consistent value.
    public var current: Published<P.View> { shared.withLock { $0.published } }

    public var state: ProjectionState { shared.withLock { $0.state } }

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
    public func waitForPosition(_ position: LogPosition, timeout: Duration) async -> Bool {
        let id: UInt64? = shared.withLock { s in
            if s.published.position >= position || s.stopped { return nil }
            s.nextWaiterID += 1
            s.waiters[s.nextWaiterID] = .pending
            return s.nextWaiterID
        }
        guard let id else { return current.position >= position }
        let first = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.waitUntilPublished(position, id: id) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        return first || current.position >= position
    }

    /// Waiters not yet resumed (for tests: none may be left behind).
    var waiterCount: Int { shared.withLock { $0.waiters.count } }

    private func waitUntilPublished(_ position: LogPosition, id: UInt64) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = shared.withLock { s in
                    guard case .pending = s.waiters[id] else {
                        s.waiters[id] = nil
                        return false
                    }
                    if s.published.position >= position || s.stopped {
                        s.waiters[id] = nil
                        return s.published.position >= position
                    }
                    s.waiters[id] = .waiting(position, continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Bool, Never>? = shared.withLock { s in
                switch s.waiters[id] {
                case .waiting(_, let continuation):
                    s.waiters[id] = nil
                    return continuation
                case .pending:
                    s.waiters[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            waiter?.resume(returning: false)
        }
    }

    // MARK: - Running

    /// Runs the fold until the task is cancelled (or the store ends its subscription, as a
    /// closing store does), then writes a final snapshot and returns. Store failures are
    /// retried, never thrown; it throws only when called a second time.
    public func run() async throws {
        try shared.withLock { s in
            guard !s.started else { throw ProjectionError(.alreadyRunning, "run() was already called on this runner; make a new runner") }
            s.started = true
        }
        var (fold, previous) = loadSnapshot()
        if let previous {
            publish(Fold(projection: previous.projection, position: previous.position, recordedAt: previous.recordedAt, rebuilding: true),
                    state: .rebuilding)
            fold.servingPrevious = true
            onEvent?(.previousVersionServed(position: previous.position))
        } else {
            publish(fold, state: fold.rebuilding ? .rebuilding : .catchingUp)
        }
        var schedule = (position: fold.position, time: ContinuousClock.now, task: Task<Void, Never>?.none)
        var attempt = 0
        while !Task.isCancelled {
            do {
                try await follow(&fold, attempt: &attempt) { fold in
                    guard let snapshots, fold.position > schedule.position,
                          fold.position - schedule.position >= UInt64(max(1, options.snapshotEveryEvents))
                            || ContinuousClock.now - schedule.time >= .seconds(options.snapshotEverySeconds),
                          !shared.withLock({ $0.writingSnapshot }) else { return }
                    shared.withLock { $0.writingSnapshot = true }
                    let (projection, position, recordedAt) = (fold.projection, fold.position, fold.recordedAt)
                    schedule = (position, ContinuousClock.now, Task.detached { [self] in
                        writeSnapshot(projection, position: position, recordedAt: recordedAt, to: snapshots)
                        shared.withLock { $0.writingSnapshot = false }
                    })
                }
                break
            } catch {
                if Task.isCancelled { break }
                let delays = options.retryDelays.isEmpty ? [Duration.seconds(1)] : options.retryDelays
                let delay = delays[min(attempt, delays.count - 1)]
                attempt += 1
                setState(.storeUnavailable)
                onEvent?(.storeFailed(reason: "\(error)", retryIn: delay))
                do { try await Task.sleep(for: delay) } catch { break }
            }
        }
        await schedule.task?.value
        if let snapshots, fold.position > 0, shared.withLock({ $0.snapshotPosition }) != fold.position {
            writeSnapshot(fold.projection, position: fold.position, recordedAt: fold.recordedAt, to: snapshots)
        }
        let waiters: [CheckedContinuation<Bool, Never>] = shared.withLock { s in
            s.stopped = true
            var resumed: [CheckedContinuation<Bool, Never>] = []
            for (id, slot) in s.waiters {
                if case .waiting(_, let continuation) = slot {
                    resumed.append(continuation)
                    s.waiters[id] = nil
                }
            }
            return resumed
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Folds `P` from scratch up to `until` (inclusive; nil = the head), for tools.
    public static func rebuild(store: Store, until: LogPosition? = nil) async throws -> RebuiltProjection<P> {
        try await P.rebuild(from: store, until: until)
    }

    /// One subscription: from the fold's position to wherever the store ends it. Returns
    /// when the subscription ends (cancellation or a closed store); throws on store failure.
    private func follow(_ fold: inout Fold, attempt: inout Int, afterBatch: (Fold) -> Void) async throws {
        var knownHead = try await store.head().position
        noteHead(knownHead)
        attempt = 0
        if knownHead < fold.position {
            onEvent?(.snapshotIgnored(reason: "the log's head \(knownHead) is behind the view's position \(fold.position): "
                + "the snapshot came from another log; folding from the start"))
            fold = Fold(projection: P(), position: 0, recordedAt: nil, rebuilding: true)
            shared.withLock { $0.snapshotPosition = nil }
            publish(fold, state: .rebuilding)
        }
        if fold.servingPrevious, shared.withLock({ $0.published.position }) > knownHead {
            // The old version's view is ahead of this log: it came from another log.
            fold.servingPrevious = false
            publish(fold, state: .rebuilding)
        }
        fold.live = fold.position >= knownHead
        if fold.live {
            fold.rebuilding = false
            publish(fold, state: .live)
        } else {
            setState(fold.rebuilding ? .rebuilding : .catchingUp)
        }
        let interval = Duration.milliseconds(max(0, options.publishMinimumIntervalMilliseconds))
        var lastPublish = ContinuousClock.now
        for try await batch in store.subscribe(from: fold.position + 1).batches {
            guard let last = batch.last, last.position > fold.position else { continue }
            let events = batch[0].position > fold.position ? batch : Array(batch.drop { $0.position <= fold.position })
            guard events[0].position == fold.position + 1 else {
                throw ProjectionError(.gap, "the store delivered position \(events[0].position) after \(fold.position); re-reading")
            }
            fold.projection.apply(batch: events)
            fold.position = last.position
            fold.recordedAt = last.recordedAt
            if !fold.live, fold.position >= knownHead {
                knownHead = try await store.head().position
                noteHead(knownHead)
                fold.live = fold.position >= knownHead
                if fold.live { fold.rebuilding = false }
            }
            if fold.live {
                publish(fold, state: .live)
            } else if !fold.servingPrevious, ContinuousClock.now - lastPublish >= interval {
                publish(fold, state: nil)
                lastPublish = ContinuousClock.now
            }
            afterBatch(fold)
        }
    }

    /// The fold to continue, and an older version's state to serve meanwhile, if any.
    private func loadSnapshot() -> (Fold, RebuiltProjection<P>?) {
        guard let snapshots else { return (Fold(projection: P(), position: 0, recordedAt: nil, rebuilding: false), nil) }
        let load = snapshots.load(P.self)
        for reason in load.ignored { onEvent?(.snapshotIgnored(reason: reason)) }
        if let file = load.file {
            shared.withLock { $0.snapshotPosition = load.position }
            onEvent?(.snapshotLoaded(file: file, position: load.position))
        }
        let rebuilding = load.file == nil && load.olderVersion != nil
        return (Fold(projection: load.projection, position: load.position, recordedAt: load.recordedAt, rebuilding: rebuilding),
                rebuilding ? load.previous : nil)
    }

    private func writeSnapshot(_ projection: P, position: LogPosition, recordedAt: Int64?, to snapshots: SnapshotStore) {
        do {
            try snapshots.save(projection, position: position, recordedAt: recordedAt)
            shared.withLock { s in s.snapshotPosition = max(s.snapshotPosition ?? 0, position) }
            onEvent?(.snapshotWritten(position: position))
        } catch {
            onEvent?(.snapshotFailed(reason: "\(error)"))
        }
    }

    /// Publishes the fold's view (made outside the lock) and, when given, a new state; wakes
    /// the waiters it satisfies.
    private func publish(_ fold: Fold, state newState: ProjectionState?) {
        let published = Published(view: fold.projection.makeView(), position: fold.position, recordedAt: fold.recordedAt)
        let (ready, oldState): ([CheckedContinuation<Bool, Never>], ProjectionState) = shared.withLock { s in
            s.published = published
            let old = s.state
            if let newState { s.state = newState }
            var ready: [CheckedContinuation<Bool, Never>] = []
            for (id, slot) in s.waiters {
                if case .waiting(let position, let continuation) = slot, position <= published.position {
                    ready.append(continuation)
                    s.waiters[id] = nil
                }
            }
            return (ready, old)
        }
        if let newState, newState != oldState { onEvent?(.stateChanged(from: oldState, to: newState)) }
        for waiter in ready { waiter.resume(returning: true) }
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

import Dispatch
import Synchronization

/// The second half of group commit under `fsync always`: a thread that makes every batch
/// written so far durable with one fdatasync, then publishes them and acknowledges their
/// appends. While it syncs, the writer writes the next batch, so a sync is never idle
/// waiting for encoding and every sync covers as many appends as have arrived.
final class BatchSyncer: @unchecked Sendable {
    private struct Queue {
        var batches: [WrittenBatch] = []
        var writerWaiting = false
        var closing = false
    }

    private let core: FileLogCore
    private let queue = Mutex(Queue())
    private let worker = WorkerThread()
    private let space = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let counters: Locked<WriterCounters>

    init(core: FileLogCore, counters: Locked<WriterCounters>) {
        self.core = core
        self.counters = counters
        worker.start { [self] in step() }
    }

    /// Hands a written batch over. Blocks while one batch already waits behind a running
    /// sync: appends that arrive meanwhile gather into the writer's next, larger batch.
    func submit(_ batch: WrittenBatch) {
        while true {
            let accepted = queue.withLock { q in
                if q.batches.isEmpty {
                    q.batches.append(batch)
                    return true
                }
                q.writerWaiting = true
                return false
            }
            if accepted {
                worker.wake()
                return
            }
            space.wait()
        }
    }

    /// Syncs and publishes what is queued, then stops the thread.
    func close() {
        queue.withLock { $0.closing = true }
        worker.wake()
        finished.wait()
    }

    /// One turn: sync and publish what is queued, or stop when closing, or sleep.
    private func step() -> WorkerThread.Next {
        let (batches, closing, wakeWriter) = queue.withLock { q in
            let taken = q.batches
            q.batches = []
            let wake = q.writerWaiting
            q.writerWaiting = false
            return (taken, q.closing, wake)
        }
        if wakeWriter { space.signal() }
        if !batches.isEmpty {
            sync(batches)
            return .proceed
        }
        if closing {
            finished.signal()
            return .stop
        }
        return .sleep
    }

    private func sync(_ batches: [WrittenBatch]) {
        if let failure = core.state.withLock({ $0.failure }) {
            core.abandon(batches, error: failure)
            return
        }
        var files: [ObjectIdentifier: SystemFile] = [:]
        for batch in batches { files[ObjectIdentifier(batch.file)] = batch.file }
        do {
            let start = monotonicNanoseconds()
            for file in files.values { try file.syncData() }
            let elapsed = monotonicNanoseconds() - start
            counters.withLock { $0.recordSync(elapsed) }
        } catch {
            // The kernel may have dropped the dirty pages: nothing in them is acknowledged,
            // and the log refuses appends until reopened.
            counters.withLock { $0.statistics.failedCommits += batches.count }
            core.fail(error)
            core.abandon(batches, error: error)
            return
        }
        core.publish(batches)
    }
}

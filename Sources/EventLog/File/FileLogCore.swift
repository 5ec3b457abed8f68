import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Shared between the log, its writer thread and its readers.
final class FileLogCore: Sendable {
    let directory: String
    let state: Mutex<FileLogState>
    /// Readers tailing the log, resumed as batches are published; closed with the log.
    let commits: PositionWaiters

    init(directory: String, state: consuming FileLogState) {
        self.directory = directory
        self.commits = PositionWaiters(position: state.head)
        self.state = Mutex(state)
    }

}


extension FileLogCore {
    /// Makes written batches visible to readers, in order, and acknowledges their appends.
    /// Call only once they are as durable as the fsync policy says.
    func publish(_ batches: [WrittenBatch]) {
        var acknowledgements: [Acknowledgement] = []
        let head = state.withLock { s in
            for batch in batches {
                s.head = batch.lastPosition
                s.headHash = batch.chainHash
                s.activeBatches.append(batch.location)
                s.addActive(streams: batch.touched, keys: batch.keys)
                for stream in batch.touched.keys {
                    if !s.unsyncedStreams.isEmpty, let entry = s.unsyncedStreams[stream], entry.sequence <= batch.sequence {
                        s.unsyncedStreams[stream] = nil
                    }
                }
                for key in batch.keys.keys {
                    if !s.unsyncedKeys.isEmpty, let entry = s.unsyncedKeys[key], entry.sequence <= batch.sequence { s.unsyncedKeys[key] = nil }
                }
                s.bytesOnDisk += batch.location.totalSize
                acknowledgements += batch.acknowledgements
                if let late = s.lateAcknowledgements.removeValue(forKey: batch.sequence) { acknowledgements += late }
                s.promoteSealIfPublished()
            }
            return s.head
        }
        for ack in acknowledgements { ack.continuation.resume(with: ack.outcome) }
        commits.advance(to: head)
    }

    /// Fails written batches that will never be published (their sync failed, or the log
    /// failed before it).
    func abandon(_ batches: [WrittenBatch], error: any Error) {
        var acknowledgements: [Acknowledgement] = []
        state.withLock { s in
            for batch in batches {
                acknowledgements += batch.acknowledgements
                if let late = s.lateAcknowledgements.removeValue(forKey: batch.sequence) { acknowledgements += late }
            }
        }
        for ack in acknowledgements { ack.continuation.resume(throwing: error) }
    }

    /// Marks the log failed: no further append is accepted until it is reopened.
    func fail(_ error: any Error) {
        state.withLock { s in
            if s.failure == nil {
                s.failure = EventLogError(.closed, "the log at \(directory) stopped after a failed write or sync; reopen it", cause: EventLogError.wrapping(error))
            }
        }
    }
}

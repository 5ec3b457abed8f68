extension FileLog {
    public struct Options: Sendable {
        public var fsync: FsyncPolicy
        /// A segment is sealed once it reaches this size (bytes); bounds 64 KiB...4 GiB.
        public var segmentSize: Int
        /// Open without the writer lock; appends fail, nothing on disk changes.
        public var readOnly: Bool
        /// Cut the log at the first damaged batch instead of refusing to open. The cut bytes
        /// and any later segments are kept beside the log (`*.damaged`), never deleted.
        public var repair: Bool
        /// LZ4 acceleration level passed to the frame compressor (0 = default fast mode).
        public var compressionLevel: Int32
        /// Streams of sealed segments whose event count the log keeps in memory (a bounded
        /// cache in front of the on-disk indexes); 0 disables it. Memory is about 100 bytes
        /// per entry.
        public var streamCacheCapacity: Int
        /// Called on the writer thread when a full segment could not be sealed (the log keeps
        /// appending to it and tries again after the next batch): for a log line. The count
        /// and the last message are also in `statistics()`.
        public var onSealFailure: (@Sendable (EventLogError) -> Void)?
        /// The writer checkpoints the active segment's streams and keys (`NAME.ckp`) after
        /// every this many bytes of it, and at close, so that opening scans at most about this
        /// much of the segment, not all of it, and memory holds only the streams and keys of
        /// at most this much of it (the rest are looked up in the checkpoint's records on
        /// disk). Each checkpoint costs an fsync of the segment and of the checkpoint file.
        /// 0 checkpoints at close only (the whole active segment's streams stay in memory).
        public var checkpointBytes: Int

        public init(
            fsync: FsyncPolicy = .always, segmentSize: Int = 128 << 20, readOnly: Bool = false,
            repair: Bool = false, compressionLevel: Int32 = 0, streamCacheCapacity: Int = 100_000,
            checkpointBytes: Int = 8 << 20, onSealFailure: (@Sendable (EventLogError) -> Void)? = nil
        ) {
            self.checkpointBytes = checkpointBytes
            self.fsync = fsync
            self.segmentSize = segmentSize
            self.readOnly = readOnly
            self.repair = repair
            self.compressionLevel = compressionLevel
            self.streamCacheCapacity = streamCacheCapacity
            self.onSealFailure = onSealFailure
        }
    }

    /// What opening the log found and did.
    public struct RecoveryReport: Sendable, Equatable, CustomStringConvertible {
        public struct TornTail: Sendable, Equatable {
            public var segment: String
            public var offset: Int
            public var bytes: Int
            /// The position the cut batch would have started at.
            public var fromPosition: LogPosition
        }
        public struct Repair: Sendable, Equatable {
            public var segment: String
            public var offset: Int
            public var position: LogPosition
            public var reason: String
            /// Bytes cut from the damaged segment, kept in `<segment>.damaged`.
            public var bytesCut: Int
            /// Later segments moved aside as `<name>.damaged`.
            public var segmentsMovedAside: [String]
        }

        public var tornTail: TornTail?
        public var repair: Repair?
        /// Sealed segments whose index was missing or stale and was rebuilt.
        public var rebuiltIndexes: [String] = []

        public var description: String {
            var lines: [String] = []
            if let t = tornTail {
                lines.append("cut a torn tail of \(t.bytes) bytes from \(t.segment) at byte \(t.offset) (position \(t.fromPosition) onward was never acknowledged)")
            }
            if let r = repair {
                lines.append("repaired: cut \(r.bytesCut) bytes from \(r.segment) at byte \(r.offset), position \(r.position) (\(r.reason)); moved aside: \(r.segmentsMovedAside)")
            }
            if !rebuiltIndexes.isEmpty { lines.append("rebuilt indexes: \(rebuiltIndexes.joined(separator: ", "))") }
            return lines.isEmpty ? "clean" : lines.joined(separator: "; ")
        }
    }
}

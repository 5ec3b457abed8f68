import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A checked snapshot file read again chunk by chunk for decoding, so that a load holds one
/// chunk of it at a time rather than the whole file (50 MB for the unlocked-profiles view of
/// a 10 M-event log, two such files at once in a cold start). `SnapshotStore.openFile`
/// checks the whole file first (`SnapshotFormat.frame`); each chunk's CRC is checked again
/// as it is read here, so a file changed in between is refused, not misread.
final class SnapshotChunks {
    let framing: SnapshotFormat.Framing
    let path: String
    private let fd: Int32
    private var next = 0

    init(fd: Int32, path: String, framing: SnapshotFormat.Framing) {
        self.fd = fd
        self.path = path
        self.framing = framing
    }

    deinit { close(fd) }

    /// Appends the next chunk's state bytes to `window`; false after the last chunk.
    func appendNext(to window: inout [UInt8]) throws -> Bool {
        guard next < framing.chunks.count else { return false }
        let chunk = framing.chunks[next]
        next += 1
        let bytes = try Self.read(fd, count: chunk.length, at: chunk.offset, path: path)
        guard CRC32C.checksum(bytes) == chunk.crc else {
            throw ProjectionError(.corrupted, "snapshot \(path): chunk \(next) changed after it was checked (checksum mismatch)")
        }
        window.append(contentsOf: bytes)
        return true
    }

    /// Exactly `count` bytes at `offset`, or an error (a short file is an error here: its
    /// size was checked before).
    static func read(_ fd: Int32, count: Int, at offset: Int, path: String) throws -> [UInt8] {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while initialized < count {
                let n = pread(fd, buffer.baseAddress! + initialized, count - initialized, off_t(offset + initialized))
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    failure = n < 0 ? errno : EIO
                    break
                }
                initialized += n
            }
        }
        guard bytes.count == count else {
            throw ProjectionError(.io, "snapshot \(path) cannot be read at byte \(offset): \(String(cString: strerror(failure)))")
        }
        return bytes
    }
}

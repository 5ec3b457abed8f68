import Logging
public import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `tally-server`'s log lines go: standard error, written in batches.
///
/// With the access log on, every request logs a line; one `write(2)` per line cost the hot
/// reads a fifth of their throughput. So lines below `notice` (debug and info, the access log
/// among them) wait here and go out together, at the latest every `flushInterval`, at once
/// when `flushThreshold` bytes wait, and at shutdown. A line at `notice` or above goes out at
/// once with everything before it, so order is kept and an operator sees warnings when they
/// happen. The price: a process killed by a signal or a trap loses at most the last interval's
/// debug and info lines; it never loses a warning.
public final class BufferedLogSink: Sendable {
    /// The sink every `LogFormat` handler writes to by default.
    public static let standardError = BufferedLogSink(write: StandardError.write)

    /// Bytes that send the buffer out before the interval ends.
    public static let flushThreshold = 64 * 1024

    private let pending = Mutex<[UInt8]>([])
    private let write: @Sendable (UnsafeBufferPointer<UInt8>) -> Void

    /// `write` receives whole lines, in order, one batch at a time, never two at once.
    init(write: @escaping @Sendable (UnsafeBufferPointer<UInt8>) -> Void) {
        self.write = write
    }

    /// Adds one rendered line; `level` decides whether it waits.
    func append(_ line: [UInt8], level: Logger.Level) {
        pending.withLock { buffer in
            buffer.append(contentsOf: line)
            if level >= .notice || buffer.count >= Self.flushThreshold { drain(&buffer) }
        }
    }

    /// Writes out whatever waits.
    public func flush() {
        pending.withLock { drain(&$0) }
    }

    /// Under the lock, so batches never interleave and a line never overtakes an older one.
    private func drain(_ buffer: inout [UInt8]) {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBufferPointer(write)
        buffer.removeAll(keepingCapacity: buffer.capacity <= 4 * Self.flushThreshold)
    }
}

/// Flushes a `BufferedLogSink` every interval while the server runs, and once more when the
/// service group stops it (it is the first service, so it stops last).
public struct LogFlushService: Service {
    public static let defaultInterval = Duration.milliseconds(100)

    let sink: BufferedLogSink
    let interval: Duration

    public init(sink: BufferedLogSink = .standardError, interval: Duration = LogFlushService.defaultInterval) {
        self.sink = sink
        self.interval = interval
    }

    public func run() async throws {
        defer { sink.flush() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            sink.flush()
        }
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// File descriptor 2, written whole: short writes are continued, `EINTR` retried; any other
/// failure drops the rest of the batch (there is nowhere left to report it).
enum StandardError {
    @Sendable static func write(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let written = systemWrite(2, base + offset, buffer.count - offset)
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

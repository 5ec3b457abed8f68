public import NIOCore
import Synchronization

/// The live stream's subscribers: one publisher hands each frame to every subscriber's
/// small buffer, so a connection costs a buffer and a write per frame, never work of its
/// own. Bounded: past `maximum` subscribers, `subscribe()` refuses. `finish()` (graceful
/// shutdown) ends every stream and refuses new ones.
public final class LiveFeed: Sendable {
    public static let defaultMaximum = 1_000
    /// Frames a slow subscriber may have waiting; older ones are dropped (each frame holds
    /// the whole state, so only the newest matters).
    static let bufferedFrames = 2

    public let maximum: Int

    private struct State {
        var subscribers: [Int: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextID = 0
        var finished = false
        var last: ByteBuffer?
    }

    private let state = Mutex(State())

    public init(maximum: Int = LiveFeed.defaultMaximum) { self.maximum = maximum }

    /// One subscriber's frames, starting with the newest published one (so a new dashboard
    /// shows values at once); nil when `maximum` are subscribed or the feed has finished.
    public func subscribe() -> LiveSubscription? {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingNewest(Self.bufferedFrames))
        let id: Int? = state.withLock { s in
            guard !s.finished, s.subscribers.count < maximum else { return nil }
            let id = s.nextID
            s.nextID += 1
            s.subscribers[id] = continuation
            if let last = s.last { continuation.yield(last) }
            return id
        }
        guard let id else { return nil }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return LiveSubscription(frames: stream, continuation: continuation)
    }

    private func remove(_ id: Int) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Hands `frame` to every subscriber.
    public func publish(_ frame: ByteBuffer) {
        let continuations = state.withLock { s -> [AsyncStream<ByteBuffer>.Continuation] in
            guard !s.finished else { return [] }
            s.last = frame
            return Array(s.subscribers.values)
        }
        for continuation in continuations { continuation.yield(frame) }
    }

    /// Ends every subscriber's stream and refuses new subscribers.
    public func finish() {
        let continuations = state.withLock { s -> [AsyncStream<ByteBuffer>.Continuation] in
            s.finished = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

/// One subscriber: its frames, and the way to end them (graceful shutdown of its connection).
public struct LiveSubscription: Sendable {
    public let frames: AsyncStream<ByteBuffer>
    let continuation: AsyncStream<ByteBuffer>.Continuation

    public func end() { continuation.finish() }
}

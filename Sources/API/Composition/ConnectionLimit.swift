public import HummingbirdCore
import Synchronization

/// At most `maximum` open HTTP connections: past it, Hummingbird stops accepting, so new
/// connections wait in the kernel's listen backlog (and are refused by the kernel only once
/// that is full) until an open one closes. Shared by reference so that the count can be
/// read while the server runs (tests, metrics).
public struct ConnectionLimit: AvailableConnectionsDelegate {
    public let maximum: Int
    private let counter: Counter

    private final class Counter: Sendable {
        let open = Atomic<Int>(0)
    }

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
        counter = Counter()
    }

    /// Connections open right now.
    public var open: Int { counter.open.load(ordering: .relaxed) }

    public mutating func connectionOpened() { counter.open.add(1, ordering: .relaxed) }
    public mutating func connectionClosed() { counter.open.subtract(1, ordering: .relaxed) }
    public func isAcceptingNewConnections() -> Bool { open < maximum }
}

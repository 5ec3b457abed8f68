public import EventLog
import Events
import Synchronization

/// A user's wallet as commands decide on it: the fold of the user's stream `user-<id>`
/// up to `version`. Unlock decides against its balance and unlocked set and appends with
/// the expected version `version`, so a decision on a stale wallet never lands.
///
/// Balance = Σ `CreditsGranted.amount` − Σ `ProfileUnlocked.credits_spent`. The stream's
/// other events (mostly `CreatorSearched`) only advance the version; they are recognised
/// by their type bytes and never decoded.
public struct WalletState: Sendable, Hashable {
    /// One unlocked profile: enough to answer a repeated request exactly as the first time.
    public struct Unlock: Sendable, Hashable {
        /// Position of the first `ProfileUnlocked` of this profile in the user's stream.
        public var position: LogPosition
        public var creditsSpent: Int64
        /// Microseconds since 1970-01-01 UTC.
        public var recordedAt: Int64
        /// The balance right after this unlock: what the command that wrote it answered.
        public var balanceAfter: Int64
        /// The idempotency key of the append that wrote it, if it had one.
        public var idempotencyKey: String?
    }

    /// A grant or an unlock, for the wallet's recent history (`/credits/balance`).
    public struct Movement: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable {
            case grant
            case unlock
        }

        public var kind: Kind
        public var position: LogPosition
        /// Credits granted (grant) or spent (unlock); never negative.
        public var amount: Int64
        /// Microseconds since 1970-01-01 UTC.
        public var recordedAt: Int64
        public var balanceAfter: Int64
        /// The grant's reason, or the unlocked username.
        public var detail: String
    }

    /// How many movements `recentMovements` keeps.
    public static let recentMovementLimit = 20

    public let user: String
    public private(set) var balance: Int64 = 0
    public private(set) var totalGranted: Int64 = 0
    public private(set) var totalSpent: Int64 = 0
    /// Unlocked profiles by (normalised) username.
    public private(set) var unlocked: [String: Unlock] = [:]
    /// The username each unlock written with an idempotency key (the stored, scoped key)
    /// unlocked, so a key reused for another profile is refused before any other decision.
    public private(set) var unlockKeys: [String: String] = [:]
    /// The last folded version of the user's stream; nil while the stream has no events.
    public private(set) var version: UInt64?
    /// The log position of the last folded event (0 before any).
    public private(set) var position: LogPosition = 0
    /// Oldest first; at most `recentMovementLimit`.
    private var movements: [Movement] = []
    /// The first grant or unlock in the stream that this build cannot read (a newer schema,
    /// malformed bytes): the balance is then unknown, and commands that spend refuse.
    public private(set) var unreadable: UnreadableEvent?

    public struct UnreadableEvent: Sendable, Hashable {
        public var position: LogPosition
        public var type: String
        public var schemaVersion: UInt16
    }

    public init(user: String) {
        self.user = user
    }

    /// The last grants and unlocks, newest first.
    public var recentMovements: [Movement] { movements.reversed() }

    /// The user's stream, `user-<id>`.
    public var stream: String { Self.stream(of: user) }

    public static func stream(of user: String) -> String { EventType.creditsGranted.category + "-" + user }

    /// The version to read from to catch up.
    public var nextVersion: UInt64 { version.map { $0 + 1 } ?? 0 }

    /// What an append decided on this state must expect of the stream.
    public var expectedVersion: ExpectedVersion { version.map { .exact($0) } ?? .noStream }

    /// Folds one event of the user's stream. Events at or below `version` are ignored, so
    /// folding an overlapping read twice is harmless; events this build cannot read (an
    /// unknown type or a newer schema) only advance the version, as in projections — except
    /// a grant or an unlock, which is recorded in `unreadable`.
    public mutating func apply(_ event: RecordedEvent) {
        if let version, event.streamVersion <= version { return }
        version = event.streamVersion
        position = max(position, event.position)
        guard let type = EventType(of: event), type == .creditsGranted || type == .profileUnlocked else { return }
        switch event.domainEvent {
        case .creditsGranted(let grant):
            balance = Self.add(balance, grant.amount)
            totalGranted = Self.add(totalGranted, grant.amount)
            remember(Movement(kind: .grant, position: event.position, amount: grant.amount, recordedAt: event.recordedAt,
                              balanceAfter: balance, detail: grant.reason))
        case .profileUnlocked(let unlock):
            balance = Self.add(balance, -unlock.creditsSpent)
            totalSpent = Self.add(totalSpent, unlock.creditsSpent)
            if unlocked[unlock.username] == nil {
                unlocked[unlock.username] = Unlock(position: event.position, creditsSpent: unlock.creditsSpent, recordedAt: event.recordedAt,
                                                   balanceAfter: balance, idempotencyKey: event.idempotencyKey)
            }
            if let key = event.idempotencyKey, unlockKeys[key] == nil { unlockKeys[key] = unlock.username }
            remember(Movement(kind: .unlock, position: event.position, amount: unlock.creditsSpent, recordedAt: event.recordedAt,
                              balanceAfter: balance, detail: unlock.username))
        default:
            if unreadable == nil { unreadable = UnreadableEvent(position: event.position, type: type.rawValue, schemaVersion: event.schemaVersion) }
        }
    }

    public mutating func apply(contentsOf events: some Sequence<RecordedEvent>) {
        for event in events { apply(event) }
    }

    /// The movement written at `position`, if the recent history still holds it.
    func movement(at position: LogPosition) -> Movement? {
        movements.last { $0.position == position }
    }

    private mutating func remember(_ movement: Movement) {
        if movements.count == Self.recentMovementLimit { movements.removeFirst() }
        movements.append(movement)
    }

    /// Sums saturate: amounts are bounded on write, but a fold of stored bytes never traps.
    private static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}

/// Wallets folded so far, per user, so that a command reads only the events appended
/// since (`readStream(fromVersion: version + 1)`) rather than the whole user stream.
/// Bounded: past `capacity` users the least recently used half is dropped (a dropped
/// wallet is folded again from the log on its next command).
final class WalletCache: Sendable {
    private struct Entry {
        var state: WalletState
        var lastUsed: UInt64
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    let capacity: Int
    private let storage = Mutex(Storage())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { storage.withLock { $0.entries.count } }

    /// The user's wallet, taken out of the cache so that the events folded into it next
    /// change it in place. Left shared, the first one copied every unlocked profile of the
    /// user: a cost per command that grew with the user's history. `store` puts it back; a
    /// command for the same user meanwhile (only a read, outside the user's lane) folds the
    /// stream itself, and `store` keeps whichever is further.
    func take(_ user: String) -> WalletState? {
        storage.withLock { $0.entries.removeValue(forKey: user)?.state }
    }

    /// Keeps `state` unless the cache already holds the wallet folded further: folds of one
    /// stream agree up to a version, so the furthest one is always right.
    func store(_ state: WalletState) {
        storage.withLock { s in
            s.clock += 1
            if let existing = s.entries[state.user] {
                if existing.state.nextVersion < state.nextVersion {
                    s.entries[state.user] = Entry(state: state, lastUsed: s.clock)
                }
                return
            }
            if s.entries.count >= capacity { Self.evictOlderHalf(&s) }
            s.entries[state.user] = Entry(state: state, lastUsed: s.clock)
        }
    }

    private static func evictOlderHalf(_ s: inout Storage) {
        let ticks = s.entries.values.map(\.lastUsed).sorted()
        let median = ticks[ticks.count / 2]
        s.entries = s.entries.filter { $0.value.lastUsed >= median }
    }
}

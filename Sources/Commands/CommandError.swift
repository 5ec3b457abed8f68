import EventLog
public import Events

/// Why a command was refused or failed. Every failure of a command is one of these, so
/// the API maps errors to statuses in one place: `code` is stable (clients key on it),
/// `message` says what went wrong and what to do, `cause` carries the underlying error.
/// A command that throws wrote nothing.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    /// A closed set: clients key on `rawValue`, so a code is never renamed and none is made
    /// up elsewhere (no public initializer). `base` lets the HTTP mapping switch exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        package enum Base: String, Sendable, CaseIterable {
            case invalidInput = "invalid_input"
            case insufficientCredits = "insufficient_credits"
            case conflict
            case storeUnavailable = "store_unavailable"
            case batchTooLarge = "batch_too_large"
            case unreadableHistory = "unreadable_history"
            case idempotencyKeyReused = "idempotency_key_reused"
        }

        package let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input broke a rule (field bounds, username rules);
        /// the cause is the `DomainError` when there is one. Fix the request. (HTTP 400)
        public static let invalidInput = Code(.invalidInput)
        /// The wallet's balance is below the unlock cost. Grant credits first. (HTTP 402)
        public static let insufficientCredits = Code(.insufficientCredits)
        /// The stream kept moving through every retry. Retry later with the same
        /// idempotency key. (HTTP 409)
        public static let conflict = Code(.conflict)
        /// The store failed or is closed; the cause is the store's error. Retry later with
        /// the same idempotency key. (HTTP 503)
        public static let storeUnavailable = Code(.storeUnavailable)
        /// A batch holds more items than one command takes. Split it. (HTTP 400)
        public static let batchTooLarge = Code(.batchTooLarge)
        /// The wallet's history holds a grant or unlock this build cannot read, so its
        /// balance is unknown; nothing was written. Upgrade Tally. (HTTP 503)
        public static let unreadableHistory = Code(.unreadableHistory)

        /// The idempotency key was first used, by the same caller on the same route, for a
        /// different request; nothing was written. Use a new key for a new request. (HTTP 422)
        public static let idempotencyKeyReused = Code(.idempotencyKeyReused)

        /// Every code, for tests and documentation.
        public static var all: [Code] { Base.allCases.map(Code.init) }

        /// The stable string clients see.
        public var rawValue: String { base.rawValue }
        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?
    /// For batch commands: the index of the item at fault.
    public var itemIndex: Int?
    /// The field at fault (JSON name), when one is.
    public var field: String?
    /// For `insufficient_credits`: the balance and the cost the command needed.
    public var balance: Int64?
    public var cost: Int64?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, itemIndex: Int? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.itemIndex = itemIndex
        self.field = field
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}

extension CommandError {
    /// Refuses to decide on a wallet whose history this build cannot fully read.
    static func unreadable(_ wallet: WalletState) -> CommandError? {
        guard let event = wallet.unreadable else { return nil }
        return CommandError(
            .unreadableHistory,
            "the wallet of user \(wallet.user) holds a \(event.type) (schema \(event.schemaVersion)) at position \(event.position) that this build cannot read, so its balance is unknown and nothing was written; upgrade Tally"
        )
    }

    /// Refused input, wrapping the `DomainError` that names the field.
    public static func invalid(_ error: DomainError, item: Int? = nil) -> CommandError {
        let prefix = item.map { "item \($0): " } ?? ""
        return CommandError(.invalidInput, prefix + error.message + "; correct it and send the request again",
                            cause: error, itemIndex: item, field: error.field)
    }

    static func insufficientCredits(balance: Int64, cost: Int64) -> CommandError {
        var error = CommandError(
            .insufficientCredits,
            "the balance is \(balance) credit\(balance == 1 ? "" : "s") and unlocking costs \(cost); grant credits first. Nothing was charged"
        )
        error.balance = balance
        error.cost = cost
        return error
    }

    /// An idempotency key that the log had seen on a different request of the same caller
    /// and route.
    static func keyReused(_ key: String) -> CommandError {
        CommandError(
            .idempotencyKeyReused,
            "idempotency key '\(key)' was first used for a different request; use a new key for a new request",
            field: "idempotency_key"
        )
    }

    /// A store failure: refused input stays `invalid_input`, anything else is `store_unavailable`.
    /// A command whose deadline passed (its client was answered 503) before it reached the
    /// store: it stops `when` and writes nothing.
    static func abandoned(_ when: String, cause: (any Error)? = nil) -> CommandError {
        CommandError(
            .storeUnavailable,
            "the command was abandoned (its deadline passed) \(when); nothing was written. Retry with the same Idempotency-Key",
            cause: cause
        )
    }

    static func store(_ error: any Error) -> CommandError {
        if let error = error as? CommandError { return error }
        if let logError = error as? EventLogError, logError.code == .invalidInput {
            return CommandError(.invalidInput, "the event log refused the events: \(logError.message)", cause: error)
        }
        return CommandError(
            .storeUnavailable,
            "the event store is unavailable (\(error)); nothing was written. Retry later with the same idempotency key",
            cause: error
        )
    }

    /// Runs a domain check, turning its `DomainError` into `invalid_input`.
    static func validating<T>(item: Int? = nil, _ body: () throws -> T) throws(CommandError) -> T {
        do {
            return try body()
        } catch let error as DomainError {
            throw .invalid(error, item: item)
        } catch {
            throw CommandError(.invalidInput, "\(error)", cause: error, itemIndex: item)
        }
    }
}

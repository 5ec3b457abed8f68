public import EventLog
public import Events

/// What a credit grant wrote.
public struct GrantResult: Sendable, Hashable {
    /// Log position of the `CreditsGranted` event.
    public var position: LogPosition
    /// The wallet's balance right after the grant.
    public var balance: Int64
    /// True when the idempotency key had been seen: this is the first grant's outcome and
    /// nothing new was written.
    public var replayed: Bool
}

/// What an unlock decided.
public struct UnlockResult: Sendable, Hashable {
    /// The normalised (lowercase) username.
    public var username: String
    /// Log position of the `ProfileUnlocked` event: the one written, or, when the profile was
    /// already unlocked, the original one.
    public var position: LogPosition
    /// Credits this unlock charged (0 when the profile was already unlocked).
    public var charged: Int64
    /// True when the user had unlocked the profile before: nothing was charged or written.
    public var alreadyUnlocked: Bool
    /// The balance after the unlock.
    public var balance: Int64
    /// True when this repeats an earlier request with the same idempotency key: the outcome
    /// is that request's, and nothing new was written.
    public var replayed: Bool
}

/// What a recording command (search, refresh, analysis, CDN, health) wrote.
public struct RecordResult: Sendable, Hashable {
    /// Positions of the events written, contiguous. Within a batch, events are grouped by
    /// stream (in order of each stream's first item), in item order within a stream.
    public var positions: ClosedRange<LogPosition>
    /// True when the idempotency key had been seen: these are the first request's
    /// positions and nothing new was written.
    public var replayed: Bool
}

/// The command side of Tally: validates, decides against the log and appends with the
/// expected stream version. Commands on one stream take turns in a per-stream lane, so
/// within one process they never conflict; when another writer (another server) moved the
/// stream on, the decision is retried a bounded number of times. Idempotency keys are
/// scoped by actor and route (`IdempotencyScope`), and a repeat is answered as a replay
/// only when it is the same request. Every method throws only `CommandError`, and a
/// command that throws wrote nothing.
public final class CommandService<Store: EventStore>: Sendable {
    public let store: Store
    /// Credits one unlock charges.
    public let unlockCost: Int64
    public let maxAttempts: Int
    let retry: ConflictRetry
    let wallets: WalletCache
    /// Commands on the same stream in this process take turns, so they never conflict with
    /// each other; only another server's write can.
    let lanes = StreamLanes()

    /// Streams whose lane a command holds or waits for right now: lanes of idle streams are
    /// dropped, so this is bounded by the commands in flight.
    public var lanesInUse: Int { lanes.count }

    /// Items one batch command takes at most.
    public static var maxBatchItems: Int { 1_000 }

    /// `unlockCost` must be in 0…1e9; `walletCacheCapacity` bounds the users whose folded
    /// wallets are kept between commands.
    public init(store: Store, unlockCost: Int64 = 1, maxAttempts: Int = 8, walletCacheCapacity: Int = 10_000) {
        precondition((0...FieldRules.maxCredits).contains(unlockCost), "unlock cost must be 0...\(FieldRules.maxCredits), got \(unlockCost)")
        self.store = store
        self.unlockCost = unlockCost
        self.maxAttempts = max(1, maxAttempts)
        self.retry = ConflictRetry(maxAttempts: maxAttempts)
        self.wallets = WalletCache(capacity: walletCacheCapacity)
    }

    // MARK: Wallet commands

    /// Adds `amount` (1…1e9) credits to the user's wallet.
    public func grantCredits(
        user: String, amount: Int64, reason: String, context: CommandContext, idempotencyKey: String? = nil
    ) async throws(CommandError) -> GrantResult {
        let context = try context.validated()
        let key = try context.scopedKey(idempotencyKey, route: .grant)
        let event = try CommandError.validating { try DomainEvent.creditsGranted(CreditsGranted(user: user, amount: amount, reason: reason)).validated() }
        let proposed = context.proposed(event)
        return try await lanes.run([WalletState.stream(of: user)]) { () throws(CommandError) in try await retry.run { _, conflict throws(CommandError) in
            let wallet = try await self.catchUp(user: user, atLeast: conflict?.actualVersion)
            if let refusal = CommandError.unreadable(wallet) { throw refusal }
            let append = StreamAppend(stream: wallet.stream, expected: wallet.expectedVersion, events: [proposed])
            switch try await self.append([append], key: key) {
            case .conflict(let conflict):
                return .retry(conflict)
            case .written(let result) where result.deduplicated:
                try await self.requireSameRequest(result, as: [append], clientKey: idempotencyKey)
                return .done(try await self.replayedGrant(user: user, result: result, clientKey: idempotencyKey ?? ""))
            case .written(let result):
                return .done(GrantResult(position: result.positions.lowerBound, balance: wallet.balance + amount, replayed: false))
            }
        } }
    }

    /// Unlocks a profile for the user at `unlockCost` credits. Already unlocked: succeeds
    /// without charging or writing. Balance below the cost: `insufficient_credits`, nothing
    /// written. The append expects the wallet's version, so concurrent unlocks never spend
    /// the same credit twice.
    public func unlock(
        user: String, username: String, context: CommandContext, idempotencyKey: String? = nil
    ) async throws(CommandError) -> UnlockResult {
        let context = try context.validated()
        let key = try context.scopedKey(idempotencyKey, route: .unlock)
        let normalised = try CommandError.validating { try FieldRules.username(username) }
        let cost = unlockCost
        let event = try CommandError.validating {
            try DomainEvent.profileUnlocked(ProfileUnlocked(user: user, username: normalised, creditsSpent: cost)).validated()
        }
        let proposed = context.proposed(event)
        return try await lanes.run([WalletState.stream(of: user)]) { () throws(CommandError) in try await retry.run { _, conflict throws(CommandError) in
            let wallet = try await self.catchUp(user: user, atLeast: conflict?.actualVersion)
            // A key this user's unlocks already used for another profile is a different
            // request, whatever this one would decide (already unlocked, too few credits).
            if let key, let first = wallet.unlockKeys[key], first != normalised { throw CommandError.keyReused(idempotencyKey ?? "") }
            if let existing = wallet.unlocked[normalised] {
                if let key, existing.idempotencyKey == key {
                    return .done(Self.original(normalised, existing))
                }
                return .done(UnlockResult(username: normalised, position: existing.position, charged: 0, alreadyUnlocked: true,
                                          balance: wallet.balance, replayed: false))
            }
            if let refusal = CommandError.unreadable(wallet) { throw refusal }
            guard wallet.balance >= cost else { throw CommandError.insufficientCredits(balance: wallet.balance, cost: cost) }
            let append = StreamAppend(stream: wallet.stream, expected: wallet.expectedVersion, events: [proposed])
            switch try await self.append([append], key: key) {
            case .conflict(let conflict):
                return .retry(conflict)
            case .written(let result) where result.deduplicated:
                // The key wrote something we did not see when deciding: answer with it if it is this unlock.
                try await self.requireSameRequest(result, as: [append], clientKey: idempotencyKey)
                let caughtUp = try await self.catchUp(user: user, atLeast: result.streamVersions[wallet.stream])
                guard let original = caughtUp.unlocked[normalised], original.position == result.positions.lowerBound else {
                    throw CommandError.keyReused(idempotencyKey ?? "")
                }
                return .done(Self.original(normalised, original))
            case .written(let result):
                return .done(UnlockResult(username: normalised, position: result.positions.lowerBound, charged: cost, alreadyUnlocked: false,
                                          balance: wallet.balance - cost, replayed: false))
            }
        } }
    }

    /// The wallet folded up to the stream's current end: balance, totals, unlocked
    /// profiles and the last grants and unlocks.
    public func wallet(user: String) async throws(CommandError) -> WalletState {
        try CommandError.validating { try FieldRules.identifier(user, field: "user", maxBytes: FieldRules.maxUserIDBytes) }
        return try await catchUp(user: user, atLeast: nil)
    }

    // MARK: Recording commands (no decision state: the log orders them)

    /// Records a creator search in the user's stream.
    public func recordSearch(_ search: CreatorSearched, context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record([.creatorSearched(search)], route: .search, context: context, idempotencyKey: idempotencyKey)
    }

    /// Records a profile's refreshed figures in its stream.
    public func recordProfileRefresh(_ refresh: ProfileRefreshed, context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record([.profileRefreshed(refresh)], route: .profileRefresh, context: context, idempotencyKey: idempotencyKey)
    }

    /// Records up to 1,000 profile refreshes in one atomic append.
    public func recordProfileRefreshes(_ refreshes: [ProfileRefreshed], context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record(batch: refreshes.map { .profileRefreshed($0) }, route: .profileRefresh, context: context, idempotencyKey: idempotencyKey)
    }

    /// Records up to 1,000 analysis outcomes in one atomic append: all are written or none.
    public func recordAnalysis(_ results: [AnalysisResult], context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record(batch: results.map(\.event), route: .analysis, context: context, idempotencyKey: idempotencyKey)
    }

    /// Records up to 1,000 CDN job transitions in one atomic append.
    public func recordCdn(_ transitions: [CdnTransition], context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record(batch: transitions.map(\.event), route: .cdn, context: context, idempotencyKey: idempotencyKey)
    }

    /// Records up to 1,000 health samples and breaker changes in one atomic append.
    public func recordHealth(_ reports: [HealthReport], context: CommandContext, idempotencyKey: String? = nil) async throws(CommandError) -> RecordResult {
        try await record(batch: reports.map(\.event), route: .health, context: context, idempotencyKey: idempotencyKey)
    }

    // MARK: Internals

    private func record(batch events: [DomainEvent], route: CommandRoute, context: CommandContext, idempotencyKey: String?) async throws(CommandError) -> RecordResult {
        guard !events.isEmpty else { throw CommandError(.invalidInput, "the batch is empty; send 1...\(Self.maxBatchItems) items") }
        guard events.count <= Self.maxBatchItems else {
            throw CommandError(.batchTooLarge, "the batch holds \(events.count) items; send at most \(Self.maxBatchItems) per request (split it)")
        }
        return try await record(events, route: route, context: context, idempotencyKey: idempotencyKey)
    }

    /// Validates every event (naming the first bad item), then appends them all, grouped
    /// by stream, as one append with `.any`. It holds the lanes of its streams, so that a
    /// search in a user's stream does not move the version a wallet command decided on.
    private func record(_ events: [DomainEvent], route: CommandRoute, context: CommandContext, idempotencyKey: String?) async throws(CommandError) -> RecordResult {
        let context = try context.validated()
        let key = try context.scopedKey(idempotencyKey, route: route)
        var appends: [StreamAppend] = []
        var slots: [String: Int] = [:]
        for (index, event) in events.enumerated() {
            let valid = try CommandError.validating(item: events.count > 1 ? index : nil) { try event.validated() }
            let stream = valid.stream
            if let slot = slots[stream] {
                appends[slot].events.append(context.proposed(valid))
            } else {
                slots[stream] = appends.count
                appends.append(StreamAppend(stream: stream, expected: .any, events: [context.proposed(valid)]))
            }
        }
        let outcome = try await lanes.run(slots.keys) { () throws(CommandError) in try await append(appends, key: key) }
        switch outcome {
        case .conflict(let conflict):
            throw CommandError(.conflict, "\(conflict); retry the request", cause: conflict)
        case .written(let result):
            if result.deduplicated { try await requireSameRequest(result, as: appends, clientKey: idempotencyKey) }
            return RecordResult(positions: result.positions, replayed: result.deduplicated)
        }
    }

    /// A repeated key is a replay only when the first request wrote exactly these events
    /// (same streams in the same order, same types, schemas and payloads); anything else is
    /// `idempotency_key_reused`. Reads only the first request's events.
    private func requireSameRequest(_ result: AppendResult, as appends: [StreamAppend], clientKey: String?) async throws(CommandError) {
        let proposed = appends.flatMap { append in append.events.map { (append.stream, $0) } }
        guard result.positions.count == proposed.count, Set(result.streamVersions.keys) == Set(appends.map(\.stream)) else {
            throw CommandError.keyReused(clientKey ?? "")
        }
        var index = 0
        do {
            for try await event in store.read(from: result.positions.lowerBound, filter: nil) {
                guard index < proposed.count, event.position == result.positions.lowerBound + LogPosition(index) else { break }
                let (stream, expected) = proposed[index]
                guard event.isInStream(stream), event.hasType(expected.type), event.schemaVersion == expected.schemaVersion,
                      event.withPayload({ $0.elementsEqual(expected.payload) }) else {
                    throw CommandError.keyReused(clientKey ?? "")
                }
                index += 1
                if index == proposed.count { break }
            }
        } catch {
            throw CommandError.store(error)
        }
        guard index == proposed.count else {
            throw CommandError.store(EventLogError(.corrupted, "the events at \(result.positions) that the idempotency key names could not be read back"))
        }
    }

    private enum AppendOutcome {
        case written(AppendResult)
        case conflict(ConflictRetry.Conflict)
    }

    private func append(_ appends: [StreamAppend], key: String?) async throws(CommandError) -> AppendOutcome {
        // Abandoned before its append (its deadline passed while it read or waited): the client
        // was answered 503; writing now would land a request the client may not retry.
        if Task.isCancelled {
            throw CommandError.abandoned("before it appended")
        }
        do {
            return .written(try await store.append(appends, idempotencyKey: key))
        } catch let error as EventLogError {
            if let conflict = ConflictRetry.Conflict(error, appendingTo: appends.map(\.stream)) { return .conflict(conflict) }
            throw CommandError.store(error)
        } catch {
            throw CommandError.store(error)
        }
    }

    private func readStream(_ stream: String, from version: UInt64, limit: Int = .max) async throws(CommandError) -> [RecordedEvent] {
        do {
            return try await store.readStream(stream, fromVersion: version, limit: limit)
        } catch {
            throw CommandError.store(error)
        }
    }

    /// The user's wallet, from the cache plus the events appended since. After a conflict,
    /// `atLeast` is the version the log had decided on. `FileLog` reports a conflict only once
    /// the winner is readable; a store that does not (a lagging replica) makes the read wait,
    /// briefly and boundedly, rather than spend an attempt deciding on the same stale state.
    func catchUp(user: String, atLeast minimum: UInt64?) async throws(CommandError) -> WalletState {
        var wallet = wallets.take(user) ?? WalletState(user: user)
        var polls = 0
        while true {
            let events: [RecordedEvent]
            do {
                events = try await readStream(wallet.stream, from: wallet.nextVersion)
            } catch {
                wallets.store(wallet)
                throw error
            }
            wallet.apply(contentsOf: events)
            // Stored before it is returned: the caller only reads it, so the cache's copy
            // stays the only one once the command ends.
            wallets.store(wallet)
            guard let minimum, wallet.version.map({ $0 < minimum }) ?? true, polls < 2_000 else { return wallet }
            polls += 1
            try? await Task.sleep(nanoseconds: 500_000)
        }
    }

    /// The outcome of the grant an idempotency key wrote first (`requireSameRequest` checked
    /// it is this grant).
    private func replayedGrant(user: String, result: AppendResult, clientKey key: String) async throws(CommandError) -> GrantResult {
        let stream = WalletState.stream(of: user)
        guard let version = result.streamVersions[stream] else { throw CommandError.keyReused(key) }
        let position = result.positions.lowerBound
        var movement = try await catchUp(user: user, atLeast: version).movement(at: position)
        if movement == nil {
            // Older than the recent history: fold the stream up to the grant.
            var history = WalletState(user: user)
            history.apply(contentsOf: try await readStream(stream, from: 0, limit: Int(clamping: version) + 1))
            movement = history.movement(at: position)
        }
        guard let movement, movement.kind == .grant else { throw CommandError.keyReused(key) }
        return GrantResult(position: position, balance: movement.balanceAfter, replayed: true)
    }

    private static func original(_ username: String, _ unlock: WalletState.Unlock) -> UnlockResult {
        UnlockResult(username: username, position: unlock.position, charged: unlock.creditsSpent, alreadyUnlocked: false,
                     balance: unlock.balanceAfter, replayed: true)
    }
}

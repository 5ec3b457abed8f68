import Commands
import EventLog
import Events
import Testing

/// The command side against a real FileLog: unlock rules, idempotency, atomic batches,
/// bounded conflict retries, and the wallet cache catching up with other writers.
@Suite(.timeLimit(.minutes(3))) struct CommandTests {
    // MARK: Grants and balance

    @Test func grantThenBalance() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let first = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            let second = try await service.grantCredits(user: "alice", amount: 3, reason: "promo", context: testUserContext)
            #expect(first.balance == 5 && second.balance == 8)
            #expect(first.position == 1 && second.position == 2)
            #expect(!first.replayed && !second.replayed)

            let wallet = try await service.wallet(user: "alice")
            #expect(wallet.balance == 8 && wallet.totalGranted == 8 && wallet.totalSpent == 0)
            #expect(wallet.version == 1 && wallet.position == 2)
            #expect(wallet.recentMovements.map(\.position) == [2, 1])
            #expect(wallet.recentMovements.map(\.amount) == [3, 5])
            #expect(wallet.recentMovements.map(\.kind) == [.grant, .grant])
            #expect(wallet.recentMovements.first?.detail == "promo")
            #expect(try await service.wallet(user: "bob").balance == 0)
        }
    }

    @Test func grantAmountBounds() async throws {
        try await withCommandLog { log in
            let service = log.service()
            for amount: Int64 in [0, -1, 1_000_000_001] {
                let error = await commandError { try await service.grantCredits(user: "alice", amount: amount, reason: "", context: testUserContext) }
                #expect(error?.code == .invalidInput)
                #expect(error?.field == "amount")
                #expect(error?.cause is DomainError)
            }
            #expect(try await log.head() == 0)
            let top = try await service.grantCredits(user: "alice", amount: 1_000_000_000, reason: "max", context: testUserContext)
            #expect(top.balance == 1_000_000_000)
        }
    }

    // MARK: Unlock rules

    @Test func unlockChargesCostAndAppendsOneEvent() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 2, reason: "signup", context: testUserContext)
            let context = CommandContext(actor: "user:alice", correlationID: "req-9", causationID: "cause-9", recordedAt: 1_700_000_000_000_000)
            let result = try await service.unlock(user: "alice", username: "Fit.Bayann", context: context)
            #expect(result.username == "fit.bayann")
            #expect(result.charged == 1 && result.balance == 1 && !result.alreadyUnlocked && !result.replayed)

            let stream = try await log.log.readStream("user-alice")
            let unlocks = stream.filter { $0.hasType("ProfileUnlocked") }
            try #require(unlocks.count == 1)
            #expect(unlocks[0].position == result.position)
            #expect(unlocks[0].actor == "user:alice" && unlocks[0].correlationID == "req-9" && unlocks[0].causationID == "cause-9")
            #expect(unlocks[0].recordedAt == 1_700_000_000_000_000)
            #expect(try await log.unlockEvents("alice") == [ProfileUnlocked(user: "alice", username: "fit.bayann", creditsSpent: 1)])
            #expect(try await service.wallet(user: "alice").balance == 1)
        }
    }

    @Test func insufficientCreditsWritesNothing() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let none = await commandError { try await service.unlock(user: "alice", username: "creator", context: testUserContext) }
            #expect(none?.code == .insufficientCredits)
            #expect(none?.balance == 0 && none?.cost == 1)

            _ = try await service.recordSearch(
                CreatorSearched(user: "alice", username: "creator", servedFrom: .cache, durationMs: 12, found: true), context: testUserContext)
            let head = try await log.head()
            let again = await commandError { try await service.unlock(user: "alice", username: "creator", context: testUserContext) }
            #expect(again?.code == .insufficientCredits)
            #expect(again?.message.contains("balance is 0") == true && again?.message.contains("costs 1") == true)
            #expect(try await log.head() == head)
            #expect(try await log.unlockEvents("alice").isEmpty)
        }
    }

    @Test func alreadyUnlockedChargesNothingAndWritesNothing() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            let first = try await service.unlock(user: "alice", username: "creator", context: testUserContext)
            let head = try await log.head()

            let second = try await service.unlock(user: "alice", username: "CREATOR", context: testUserContext)
            #expect(second.alreadyUnlocked && second.charged == 0 && !second.replayed)
            #expect(second.position == first.position)
            #expect(second.balance == 4)
            #expect(try await log.head() == head)
            #expect(try await log.unlockEvents("alice").count == 1)
            #expect(try await service.wallet(user: "alice").balance == 4)
        }
    }

    /// Under `always` the log refuses the losers before the winner's batch is durable and
    /// readable: their retry must wait to see it rather than decide on the same state.
    @Test(arguments: [FsyncPolicy.never, .always])
    func hundredConcurrentUnlocksWithBalanceForOne(fsync: FsyncPolicy) async throws {
        try await withCommandLog(fsync: fsync) { log in
            _ = try await log.service().grantCredits(user: "alice", amount: 1, reason: "one", context: testUserContext)
            // Two services, as two servers: within each, unlocks of one user take turns (its
            // lane), so the store holds the first append of each until both have arrived; both
            // decided on balance 1 and only the expected version can arbitrate.
            let gated = ScriptedStore(base: log.log, gate: 2)
            let services = [CommandService(store: gated), CommandService(store: gated)]

            let outcomes = await withTaskGroup(of: Result<UnlockResult, CommandError>.self) { group in
                for i in 0..<100 {
                    let service = services[i % 2]
                    group.addTask {
                        do throws(CommandError) {
                            return .success(try await service.unlock(user: "alice", username: "creator\(i)", context: testUserContext))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var all: [Result<UnlockResult, CommandError>] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            let successes = outcomes.compactMap { try? $0.get() }
            let failures = outcomes.compactMap { outcome -> CommandError? in
                if case .failure(let error) = outcome { return error }
                return nil
            }
            #expect(successes.count == 1)
            #expect(failures.count == 99)
            #expect(failures.allSatisfy { $0.code == .insufficientCredits })
            #expect(successes.first?.balance == 0)
            // Only the two first attempts appended: every later one (the loser's retry, and
            // each unlock waiting in a lane) decided on balance 0 without appending.
            #expect(gated.appendCalls == 2)
            #expect(try await log.service().wallet(user: "alice").balance == 0)
            #expect(try await log.unlockEvents("alice").count == 1)
        }
    }

    @Test func unlockCostIsConfigurable() async throws {
        try await withCommandLog { log in
            let service = log.service(unlockCost: 3)
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            let first = try await service.unlock(user: "alice", username: "one", context: testUserContext)
            #expect(first.charged == 3 && first.balance == 2)
            let head = try await log.head()
            let second = await commandError { try await service.unlock(user: "alice", username: "two", context: testUserContext) }
            #expect(second?.code == .insufficientCredits)
            #expect(second?.balance == 2 && second?.cost == 3)
            #expect(try await log.head() == head)
            #expect(try await log.unlockEvents("alice").map(\.creditsSpent) == [3])
        }
    }

    // MARK: Idempotency

    @Test func retriedUnlockKeyReturnsFirstOutcome() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 3, reason: "signup", context: testUserContext)
            let first = try await service.unlock(user: "alice", username: "creator", context: testUserContext, idempotencyKey: "unlock-1")
            let head = try await log.head()

            let retried = try await service.unlock(user: "alice", username: "creator", context: testUserContext, idempotencyKey: "unlock-1")
            let coldCache = try await log.service().unlock(user: "alice", username: "creator", context: testUserContext, idempotencyKey: "unlock-1")
            for again in [retried, coldCache] {
                #expect(again.replayed)
                #expect(again.position == first.position && again.charged == 1 && !again.alreadyUnlocked && again.balance == 2)
            }
            #expect(try await log.head() == head)
            #expect(try await log.unlockEvents("alice").count == 1)

            // The same key on a different request is refused, not answered with another's outcome.
            let reused = await commandError { try await service.unlock(user: "alice", username: "other", context: testUserContext, idempotencyKey: "unlock-1") }
            #expect(reused?.code == .idempotencyKeyReused && reused?.field == "idempotency_key")
            #expect(try await log.head() == head)
            #expect(try await service.wallet(user: "alice").balance == 2)
        }
    }

    @Test func retriedGrantKeyReturnsFirstOutcome() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let first = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext, idempotencyKey: "grant-1")
            let retried = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext, idempotencyKey: "grant-1")
            #expect(retried.position == first.position && retried.balance == 5 && retried.replayed && !first.replayed)
            #expect(try await log.head() == 1)

            // Still the first outcome once the grant has left the wallet's recent history.
            for _ in 0..<(WalletState.recentMovementLimit + 5) {
                _ = try await service.grantCredits(user: "alice", amount: 1, reason: "drip", context: testUserContext)
            }
            let head = try await log.head()
            let late = try await log.service().grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext, idempotencyKey: "grant-1")
            #expect(late.position == first.position && late.balance == 5 && late.replayed)
            #expect(try await log.head() == head)
            #expect(try await service.wallet(user: "alice").balance == 5 + Int64(WalletState.recentMovementLimit + 5))
        }
    }

    @Test func retriedAnalysisBatchKeyWritesOnce() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let batch = (0..<10).map { analysisCompleted($0 % 2 == 0 ? "alpha" : "beta", post: $0) }
            let first = try await service.recordAnalysis(batch, context: testServiceContext, idempotencyKey: "analysis-1")
            let retried = try await service.recordAnalysis(batch, context: testServiceContext, idempotencyKey: "analysis-1")
            #expect(first.positions == 1...10 && !first.replayed)
            #expect(retried.positions == first.positions && retried.replayed)
            #expect(try await log.head() == 10)
        }
    }

    // MARK: Batches

    @Test func analysisBatchOfThousandIsAtomic() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let batch = (0..<1_000).map { i -> AnalysisResult in
                i % 10 == 9
                    ? .failed(PostAnalysisFailed(username: "User\(i % 7)", postID: "p\(i)", error: "timeout", durationMs: 30_000))
                    : analysisCompleted("user\(i % 7)", post: i)
            }
            var bad = batch
            bad[537] = .completed(PostAnalysisCompleted(username: "user1", postID: "p537", sentiment: 2, language: "en", category: "x", durationMs: 1))
            let refused = await commandError { try await service.recordAnalysis(bad, context: testServiceContext) }
            #expect(refused?.code == .invalidInput)
            #expect(refused?.itemIndex == 537 && refused?.field == "sentiment")
            #expect(refused?.message.contains("item 537") == true)
            #expect(try await log.head() == 0)

            let written = try await service.recordAnalysis(batch, context: testServiceContext)
            #expect(written.positions == 1...1_000)
            let events = try await log.allEvents()
            #expect(events.count == 1_000)
            #expect(Set(events.map(\.stream)) == Set((0..<7).map { "profile-user\($0)" }))
            #expect(events.filter { $0.hasType("PostAnalysisFailed") }.count == 100)
            #expect(events.allSatisfy { $0.actor == "service:worker" && $0.correlationID == "job-1" })
        }
    }

    @Test func oversizedAndEmptyBatchesAreRefused() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let tooMany = (0..<1_001).map { analysisCompleted("alpha", post: $0) }
            let error = await commandError { try await service.recordAnalysis(tooMany, context: testServiceContext) }
            #expect(error?.code == .batchTooLarge)
            let cdn = (0..<1_001).map { CdnTransition.queued(CdnJobQueued(jobID: "j\($0)", priority: .low, kind: "avatar")) }
            #expect(await commandError { try await service.recordCdn(cdn, context: testServiceContext) }?.code == .batchTooLarge)
            #expect(await commandError { try await service.recordHealth([], context: testServiceContext) }?.code == .invalidInput)
            let head = try await log.head()
            #expect(head == 0)
        }
    }

    @Test func cdnHealthSearchAndRefreshLandInTheirStreams() async throws {
        try await withCommandLog { log in
            let service = log.service()
            let cdn = try await service.recordCdn([
                .queued(CdnJobQueued(jobID: "j1", priority: .high, kind: "avatar", username: "Creator")),
                .queued(CdnJobQueued(jobID: "j2", priority: .low, kind: "post")),
                .succeeded(CdnJobSucceeded(jobID: "j1", priority: .high, kind: "avatar", durationMs: 40, bytes: 1_024)),
            ], context: testServiceContext)
            #expect(cdn.positions.count == 3)
            let health = try await service.recordHealth([
                .sample(HealthSampled(component: "database", status: .ok, memoryPct: 40, cpuPct: 10, diskPct: 50, latencyMs: 3)),
                .breaker(CircuitBreakerChanged(component: "scraper", state: .open, reason: "timeouts")),
            ], context: testServiceContext)
            #expect(health.positions == 4...5)
            let search = try await service.recordSearch(
                CreatorSearched(user: "alice", username: "Creator", servedFrom: .fresh, durationMs: 300, found: true), context: testUserContext)
            let refresh = try await service.recordProfileRefresh(
                ProfileRefreshed(username: "Creator", followers: 10, following: 2, postsCount: 5, verified: false, category: "art"), context: testServiceContext)
            #expect(search.positions == 6...6 && refresh.positions == 7...7)

            #expect(try await log.log.readStream("cdn-j1").map(\.type) == ["CdnJobQueued", "CdnJobSucceeded"])
            #expect(try await log.log.readStream("health-scraper").map(\.type) == ["CircuitBreakerChanged"])
            #expect(try await log.userEvents("alice") == [.creatorSearched(CreatorSearched(user: "alice", username: "creator", servedFrom: .fresh, durationMs: 300, found: true))])
            #expect(try await log.log.readStream("profile-creator").count == 1)
        }
    }

    // MARK: Validation and failures

    @Test func invalidInputWritesNothing() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            let badName = await commandError { try await service.unlock(user: "alice", username: "not a name!", context: testUserContext) }
            #expect(badName?.code == .invalidInput && badName?.field == "username" && badName?.cause is DomainError)
            let badActor = await commandError {
                try await service.unlock(user: "alice", username: "ok", context: CommandContext(actor: String(repeating: "a", count: 129)))
            }
            #expect(badActor?.code == .invalidInput && badActor?.field == "actor")
            let badKey = await commandError { try await service.unlock(user: "alice", username: "ok", context: testUserContext, idempotencyKey: "") }
            #expect(badKey?.code == .invalidInput && badKey?.field == "idempotency_key")
            let badSearch = await commandError {
                try await service.recordSearch(CreatorSearched(user: "alice", username: "ok", servedFrom: .cache, durationMs: -1, found: true), context: testUserContext)
            }
            #expect(badSearch?.code == .invalidInput && badSearch?.field == "duration_ms" && badSearch?.itemIndex == nil)
            #expect(try await log.head() == 1)
        }
    }

    @Test func closedStoreIsUnavailable() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            try await log.log.close()
            let error = await commandError { try await service.grantCredits(user: "alice", amount: 1, reason: "late", context: testUserContext) }
            #expect(error?.code == .storeUnavailable)
            #expect((error?.cause as? EventLogError)?.code == .closed)
        }
    }

    /// A grant this build cannot read (a newer schema) makes the balance unknown: spending
    /// commands refuse and write nothing rather than decide on a wrong balance.
    @Test func aWalletWithAnUnreadableGrantRefusesToSpend() async throws {
        try await withCommandLog { log in
            let service = log.service()
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            let future = ProposedEvent(type: EventType.creditsGranted.rawValue, schemaVersion: 2, payload: [0xFF, 0x01])
            _ = try await log.log.append(to: "user-alice", events: [future])
            let head = try await log.head()
            let unlock = await commandError { try await service.unlock(user: "alice", username: "one", context: testUserContext) }
            #expect(unlock?.code == .unreadableHistory, "\(String(describing: unlock))")
            #expect(unlock?.message.contains("schema 2") == true)
            let grant = await commandError { try await service.grantCredits(user: "alice", amount: 1, reason: "more", context: testUserContext) }
            #expect(grant?.code == .unreadableHistory)
            #expect(try await log.head() == head)
            let wallet = try await service.wallet(user: "alice")
            #expect(wallet.unreadable?.position == head && wallet.unreadable?.schemaVersion == 2)
        }
    }

    // MARK: Conflicts and the wallet cache

    @Test func conflictsAreRetriedThenGiveUp() async throws {
        try await withCommandLog { log in
            _ = try await log.service().grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)

            let flaky = ScriptedStore(base: log.log, conflicts: 3)
            let recovered = try await CommandService(store: flaky, maxAttempts: 4).unlock(user: "alice", username: "one", context: testUserContext)
            #expect(recovered.charged == 1 && recovered.balance == 4)
            #expect(flaky.appendCalls == 4)

            let stuck = ScriptedStore(base: log.log, conflicts: .max)
            let head = try await log.head()
            let error = await commandError { try await CommandService(store: stuck, maxAttempts: 5).unlock(user: "alice", username: "two", context: testUserContext) }
            #expect(error?.code == .conflict)
            #expect(stuck.appendCalls == 5)
            #expect(try await log.head() == head)
        }
    }

    /// The cache hands a wallet out to be folded in place (a shared one was copied whole, every
    /// unlocked profile, by each command); a read that fails must hand it back, or the next
    /// command refolds the user's stream from its first event.
    @Test func walletCacheKeepsTheWalletAcrossAFailedRead() async throws {
        try await withCommandLog { log in
            let store = ScriptedStore(base: log.log)
            let service = CommandService(store: store)
            _ = try await service.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            _ = try await service.unlock(user: "alice", username: "one", context: testUserContext)
            #expect(store.streamReadVersions == [0, 0])

            store.failStreamReads(1)
            let error = await commandError { try await service.unlock(user: "alice", username: "two", context: testUserContext) }
            #expect(error?.code == .storeUnavailable)
            let two = try await service.unlock(user: "alice", username: "two", context: testUserContext)
            #expect(two.charged == 1 && two.balance == 3)
            // Both reads after the first unlock start past it: the wallet stayed cached.
            #expect(store.streamReadVersions == [0, 0, 1, 1])
            #expect(try await service.wallet(user: "alice").unlocked.keys.sorted() == ["one", "two"])
        }
    }

    @Test func walletCacheCatchesUpWithAnotherServer() async throws {
        try await withCommandLog { log in
            let serverA = log.service()
            let serverB = log.service()
            _ = try await serverA.grantCredits(user: "alice", amount: 5, reason: "signup", context: testUserContext)
            #expect(try await serverA.wallet(user: "alice").balance == 5)

            _ = try await serverB.grantCredits(user: "alice", amount: 10, reason: "purchase", context: testUserContext)
            let unlockedByB = try await serverB.unlock(user: "alice", username: "creator", context: testUserContext)

            let wallet = try await serverA.wallet(user: "alice")
            #expect(wallet.balance == 14 && wallet.version == 2)
            #expect(wallet.unlocked["creator"]?.position == unlockedByB.position)
            let again = try await serverA.unlock(user: "alice", username: "creator", context: testUserContext)
            #expect(again.alreadyUnlocked && again.charged == 0 && again.balance == 14)
            let next = try await serverA.unlock(user: "alice", username: "another", context: testUserContext)
            #expect(next.charged == 1 && next.balance == 13)
            #expect(try await serverB.wallet(user: "alice").balance == 13)
        }
    }

    @Test func evictedWalletsAreFoldedAgain() async throws {
        try await withCommandLog { log in
            let service = log.service(walletCacheCapacity: 2)
            for user in 0..<6 {
                _ = try await service.grantCredits(user: "u\(user)", amount: Int64(user + 1), reason: "seed", context: testUserContext)
            }
            for user in 0..<6 {
                _ = try await service.unlock(user: "u\(user)", username: "creator", context: testUserContext)
            }
            for user in 0..<6 {
                let wallet = try await service.wallet(user: "u\(user)")
                #expect(wallet.balance == Int64(user), "u\(user)")
                #expect(wallet.unlocked.keys.sorted() == ["creator"])
            }
        }
    }
}

import Commands
import EventLog
import Events
import Testing

/// Commands on one stream in one process take turns: with a single attempt allowed (no
/// retry to hide a conflict), concurrent unlocks, grants and searches on a few users never
/// conflict, and the lanes are gone once the commands are.
@Suite("Per-stream lanes", .timeLimit(.minutes(3)))
struct StreamLaneTests {
    @Test("64 concurrent tasks over 4 users, one attempt each: zero conflicts, exact balances")
    func noSelfConflicts() async throws {
        try await withCommandLog { log in
            let service = log.service(maxAttempts: 1)
            let users = (0..<4).map { "user\($0)" }
            for user in users {
                _ = try await service.grantCredits(user: user, amount: 100, reason: "seed", context: testUserContext)
            }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for task in 0..<64 {
                    group.addTask {
                        let user = users[task % 4]
                        let context = CommandContext(actor: "user:\(user)")
                        do throws(CommandError) {
                            _ = try await service.unlock(user: user, username: "creator_\(task)", context: context)
                            _ = try await service.recordSearch(CreatorSearched(user: user, username: "creator_\(task)", servedFrom: .fresh, durationMs: 1, found: true),
                                                               context: context)
                            _ = try await service.grantCredits(user: user, amount: 2, reason: "drip", context: testUserContext)
                            return "ok"
                        } catch {
                            return error.code.rawValue
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0 == "ok" }, "\(outcomes.filter { $0 != "ok" })")
            for user in users {
                let wallet = try await log.service().wallet(user: user)
                // 100 seeded, 16 unlocks at 1, 16 grants of 2.
                #expect(wallet.balance == 100 - 16 + 32, "\(user): \(wallet.balance)")
                #expect(wallet.unlocked.count == 16)
            }
            #expect(service.lanesInUse == 0)
        }
    }
}

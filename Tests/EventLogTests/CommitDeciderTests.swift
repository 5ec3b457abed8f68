import Testing
@testable import EventLog

/// The writers' commit decision without a store: positions and versions of accepted
/// appends, expected versions, idempotency keys, and when each refusal or repeat is answered.
@Suite(.timeLimit(.minutes(1)))
struct CommitDeciderTests {
    typealias Prior = CommitDecider.Prior

    static func pending(_ appends: [(String, ExpectedVersion, Int)], key: String? = nil) throws -> PendingAppend {
        try PendingAppend.validate(
            appends.map { StreamAppend(stream: $0.0, expected: $0.1, events: (0..<$0.2).map { textEvent("e\($0)") }) },
            idempotencyKey: key
        )
    }

    static func written(_ action: CommitDecider.Action) -> AppendResult? {
        if case .write(let result) = action { return result }
        return nil
    }

    @Test func acceptedAppendsGetConsecutivePositionsAndStreamVersions() throws {
        var decider = CommitDecider(after: 10)
        let first = try Self.pending([("a-1", .noStream, 2), ("b-1", .exact(4), 1)])
        let a = try #require(Self.written(decider.decide(first, keyPrior: nil, streamPriors: [Prior(0), Prior(5)])))
        #expect(a.positions == 11...13)
        #expect(a.streamVersions == ["a-1": 1, "b-1": 5])
        #expect(!a.deduplicated)
        // The next append to a-1 counts the staged events, not the store's prior.
        let second = try Self.pending([("a-1", .exact(1), 3)])
        let b = try #require(Self.written(decider.decide(second, keyPrior: nil, streamPriors: [Prior(0)])))
        #expect(b.positions == 14...16)
        #expect(b.streamVersions == ["a-1": 4])
        #expect(decider.nextPosition == 17 && decider.acceptedCount == 2)
    }

    @Test func aWrongExpectedVersionIsAnsweredWhenWhatItLostToIsReadable() throws {
        var decider = CommitDecider(after: 0)
        // Against published events: answered now, with the versions in the cause.
        let now = decider.decide(try Self.pending([("a-1", .exact(1), 1)]), keyPrior: nil, streamPriors: [Prior(5)])
        guard case .answer(.failure(let error)) = now else { Issue.record("\(now)"); return }
        #expect(error.code == .wrongExpectedVersion)
        #expect(error.cause as? WrongExpectedVersion == WrongExpectedVersion(stream: "a-1", expected: .exact(1), actual: 4))
        // Against a batch written but not published: answered once that batch is.
        let later = decider.decide(try Self.pending([("b-1", .noStream, 1)]), keyPrior: nil, streamPriors: [Prior(3, unpublishedBatch: 7)])
        guard case .answerAfter(batch: 7, .failure(let late)) = later else { Issue.record("\(later)"); return }
        #expect(late.cause as? WrongExpectedVersion == WrongExpectedVersion(stream: "b-1", expected: .noStream, actual: 2))
        // Against an append staged in this batch: answered with this batch.
        _ = try #require(Self.written(decider.decide(try Self.pending([("c-1", .noStream, 1)]), keyPrior: nil, streamPriors: [Prior(0)])))
        let loser = decider.decide(try Self.pending([("c-1", .noStream, 1)]), keyPrior: nil, streamPriors: [Prior(0)])
        guard case .answerAfter(batch: nil, .failure(let lost)) = loser else { Issue.record("\(loser)"); return }
        #expect(lost.cause as? WrongExpectedVersion == WrongExpectedVersion(stream: "c-1", expected: .noStream, actual: 0))
        // A refused append takes no positions and stages nothing, for any of its streams.
        let mixed = decider.decide(try Self.pending([("d-1", .any, 2), ("c-1", .exact(5), 1)]), keyPrior: nil, streamPriors: [Prior(0), Prior(0)])
        guard case .answerAfter(batch: nil, .failure) = mixed else { Issue.record("\(mixed)"); return }
        #expect(decider.nextPosition == 2 && decider.acceptedCount == 1)
        let d = try #require(Self.written(decider.decide(try Self.pending([("d-1", .noStream, 1)]), keyPrior: nil, streamPriors: [Prior(0)])))
        #expect(d.positions == 2...2 && d.streamVersions == ["d-1": 0])
    }

    @Test func aRepeatedKeyGetsTheFirstResultWhenTheFirstIsReadable() throws {
        var decider = CommitDecider(after: 20)
        let stored = AppendResult(positions: 3...4, streamVersions: ["a-1": 1], deduplicated: false)
        let repeatAction = decider.decide(try Self.pending([("a-1", .noStream, 2)], key: "k1"), keyPrior: Prior(stored), streamPriors: [Prior(2)])
        guard case .answer(.success(let again)) = repeatAction else { Issue.record("\(repeatAction)"); return }
        #expect(again.positions == 3...4 && again.streamVersions == ["a-1": 1] && again.deduplicated)
        // Its first append written but not published: answered when that batch is.
        let pendingAction = decider.decide(try Self.pending([("a-1", .any, 1)], key: "k2"), keyPrior: Prior(stored, unpublishedBatch: 3), streamPriors: [Prior(2)])
        guard case .answerAfter(batch: 3, .success(let late)) = pendingAction else { Issue.record("\(pendingAction)"); return }
        #expect(late.deduplicated && late.positions == 3...4)
        // Twice in one group: the second gets the first's result, with the batch.
        let first = try #require(Self.written(decider.decide(try Self.pending([("b-1", .any, 1)], key: "k3"), keyPrior: nil, streamPriors: [Prior(0)])))
        let twice = decider.decide(try Self.pending([("b-1", .noStream, 1)], key: "k3"), keyPrior: nil, streamPriors: [Prior(0)])
        guard case .answerAfter(batch: nil, .success(let same)) = twice else { Issue.record("\(twice)"); return }
        #expect(same.positions == first.positions && same.streamVersions == first.streamVersions && same.deduplicated)
        #expect(decider.nextPosition == 22 && decider.acceptedCount == 1, "repeats take no positions")
    }
}

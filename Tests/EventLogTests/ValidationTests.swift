import TallyTestSupport
import Testing
@testable import EventLog

/// Every documented bound is enforced exactly (the bound passes, one more byte fails), and a
/// rejected append throws `.invalidInput` and writes nothing.
@Suite(.timeLimit(.minutes(3))) struct ValidationTests {
    static func bytes(_ n: Int, _ c: Character = "x") -> String { String(repeating: c, count: n) }

    /// Appends one valid event, then runs every rejected append against the log: each must
    /// throw `.invalidInput`, leave the head, the segment file and all reads unchanged.
    static func expectRejected(_ cases: [(String, [StreamAppend], String?)], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            _ = try await log.append(to: "base-1", events: [textEvent("first")])
            let head = log.currentHead()
            let segment = dir.sub(try segmentNames(dir.path)[0])
            let size = try fileSize(segment)
            let before = try await readAll(log)
            for (label, appends, key) in cases {
                await expectLogError(.invalidInput, label, sourceLocation: sourceLocation) {
                    _ = try await log.append(appends, idempotencyKey: key)
                }
                #expect(log.currentHead() == head, "\(label): head moved", sourceLocation: sourceLocation)
                #expect(try fileSize(segment) == size, "\(label): bytes written", sourceLocation: sourceLocation)
                for append in appends where !append.stream.isEmpty {
                    if append.stream != "base-1" {
                        #expect(try await log.streamVersion(append.stream) == nil, "\(label)", sourceLocation: sourceLocation)
                    }
                }
            }
            #expect(try await readAll(log) == before, sourceLocation: sourceLocation)
            // Nothing was consumed: the next valid append takes position 2.
            let next = try await log.append(to: "base-1", expected: .exact(0), events: [textEvent("second")])
            #expect(next.positions == 2...2, sourceLocation: sourceLocation)
            // A rejected key was not remembered either.
            let keyed = try await log.append(to: "base-1", events: [textEvent("third")], idempotencyKey: "bad-but-unused")
            #expect(keyed.deduplicated == false, sourceLocation: sourceLocation)
            try await log.close()
        }
    }

    static func one(_ stream: String, _ e: ProposedEvent = textEvent("x"), key: String? = nil) -> [StreamAppend] {
        [StreamAppend(stream: stream, events: [e])]
    }

    @Test func streamNameRules() async throws {
        let invalid = [
            "", "nodash", "-42", "user-", "User-42", "us er-42", "user-4 2", "user-\t1", "user-\u{7F}", "us.er-1",
            "user-é", "üser-1", "USER-1", "user_-", "-", "--", "a" + Self.bytes(254) + "-1",
        ]
        try await Self.expectRejected(invalid.map { ("stream '\($0)'", Self.one($0), nil) })
        // At the bounds and edges of the rules: accepted.
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            let valid = ["user-42", "profile-fit.bayann", "health-database", "a_b9-x", "cat-a-b-c", "c-~!", "0-0",
                         "a" + Self.bytes(253) + "-1"]
            for (i, name) in valid.enumerated() {
                let result = try await log.append(to: name, events: [textEvent(name)])
                #expect(result.positions == LogPosition(i + 1)...LogPosition(i + 1), "\(name)")
            }
            #expect(try await readAll(log).map(\.stream) == valid)
            try await log.close()
        }
    }

    @Test func eventFieldBounds() async throws {
        func e(type: String = "Probe", actor: String = "", correlation: String = "", causation: String = "",
               payload: Int = 1, schema: UInt16 = 1) -> ProposedEvent {
            ProposedEvent(type: type, schemaVersion: schema, actor: actor, correlationID: correlation,
                          causationID: causation, payload: [UInt8](repeating: 1, count: payload))
        }
        try await Self.expectRejected([
            ("empty type", Self.one("t-1", e(type: "")), nil),
            ("type of 129 bytes", Self.one("t-1", e(type: Self.bytes(129))), nil),
            ("type with a dash", Self.one("t-1", e(type: "Bad-Type")), nil),
            ("type with a space", Self.one("t-1", e(type: "Bad Type")), nil),
            ("type with non-ASCII", Self.one("t-1", e(type: "Typé")), nil),
            ("actor of 129 bytes", Self.one("t-1", e(actor: Self.bytes(129))), nil),
            ("correlation of 65 bytes", Self.one("t-1", e(correlation: Self.bytes(65))), nil),
            ("causation of 65 bytes", Self.one("t-1", e(causation: Self.bytes(65))), nil),
            ("payload of 1 MiB + 1", Self.one("t-1", e(payload: (1 << 20) + 1)), nil),
            ("schema version 0", Self.one("t-1", e(schema: 0)), nil),
            ("empty key", Self.one("t-1"), ""),
            ("key of 129 bytes", Self.one("t-1"), Self.bytes(129)),
            // The second event is the bad one: the good first one is not written either.
            ("bad second event", [StreamAppend(stream: "t-1", events: [e(), e(actor: Self.bytes(200))])], nil),
        ])
        // Every field at its bound: accepted and read back whole.
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            let atBounds = e(type: Self.bytes(128, "T"), actor: Self.bytes(128), correlation: Self.bytes(64),
                             causation: Self.bytes(64), payload: 1 << 20, schema: UInt16.max)
            let result = try await log.append(to: "t-1", events: [atBounds, e(type: "a.b_C9", payload: 0)], idempotencyKey: Self.bytes(128, "k"))
            #expect(result.positions == 1...2)
            let back = try await readAll(log)
            #expect(back.map(\.type) == [Self.bytes(128, "T"), "a.b_C9"])
            #expect(back.map(\.payload.count) == [1 << 20, 0])
            #expect(back.map(\.idempotencyKey) == [Self.bytes(128, "k"), Self.bytes(128, "k")])
            try await log.close()
        }
    }

    @Test func appendShapes() async throws {
        let mib = [UInt8](repeating: 3, count: 1 << 20)
        let tooBig = (0..<64).map { _ in ProposedEvent(type: "Big", payload: mib) }
        try await Self.expectRejected([
            ("no streams", [], nil),
            ("a stream with no events", [StreamAppend(stream: "s-1", events: [])], nil),
            ("a stream with no events after a good one",
             [StreamAppend(stream: "s-1", events: [textEvent("a")]), StreamAppend(stream: "s-2", events: [])], nil),
            ("duplicate stream", [StreamAppend(stream: "s-1", events: [textEvent("a")]),
                                  StreamAppend(stream: "s-1", events: [textEvent("b")])], nil),
            ("duplicate stream with different expectations",
             [StreamAppend(stream: "s-1", expected: .noStream, events: [textEvent("a")]),
              StreamAppend(stream: "s-2", events: [textEvent("b")]),
              StreamAppend(stream: "s-1", expected: .any, events: [textEvent("c")])], nil),
            ("valid stream then invalid stream name",
             [StreamAppend(stream: "s-1", events: [textEvent("a")]), StreamAppend(stream: "Bad", events: [textEvent("b")])], nil),
            ("more than 64 MiB in one append", [StreamAppend(stream: "s-1", events: tooBig)], nil),
        ])
    }

    @Test func invalidSegmentSizeAndReadOnlyAppend() async throws {
        try await withTemporaryDirectory { dir in
            await expectLogError(.invalidInput, "segment size below 64 KiB") {
                _ = try FileLog(directory: dir.path, options: .init(segmentSize: (64 << 10) - 1))
            }
            #expect(try segmentNames(dir.path) == [])
            let log = try FileLog(directory: dir.path)
            _ = try await log.append(to: "s-1", events: [textEvent("a")])
            try await log.close()
            await expectLogError(.closed, "append after close") {
                _ = try await log.append(to: "s-1", events: [textEvent("late")])
            }
            let reader = try FileLog(directory: dir.path, options: .init(readOnly: true))
            await expectLogError(.readOnly) { _ = try await reader.append(to: "s-1", events: [textEvent("b")]) }
            #expect(try await readAll(reader).map(text) == ["a"])
            try await reader.close()
        }
    }
}

import EventLog
import Events
import Foundation
import TallyTestSupport
import Synchronization
import Testing
@testable import Projections

/// The binary snapshot format (docs/snapshot-format.md): each view's state round-trips and
/// continues the fold exactly; damaged, truncated, other-version and JSON files are refused
/// with a reason, never trusted, never trapped on.
@Suite(.timeLimit(.minutes(5))) struct BinarySnapshotTests {
    static let seeds: [UInt64] = [3, 11, 99, 4_242]

    @Test(arguments: seeds) func systemStatsRoundTrips(seed: UInt64) async throws {
        try await roundTrip(SystemStatsProjection.self, seed: seed) { $0 == $1 }
    }

    @Test(arguments: seeds) func unlockedProfilesRoundTrip(seed: UInt64) async throws {
        try await roundTrip(UnlockedProfilesProjection.self, seed: seed) { $0 == $1 }
    }

    @Test(arguments: seeds) func metricsRoundTrip(seed: UInt64) async throws {
        try await roundTrip(MetricsProjection.self, seed: seed) { MetricsComparison($0) == MetricsComparison($1) }
    }

    /// Fold to a random cut, snapshot, load, fold the rest: equals the fold of everything,
    /// and the loaded view equals the view at the cut.
    private func roundTrip<P: Projection>(_: P.Type, seed: UInt64, same: (P.View, P.View) -> Bool) async throws {
        try await withViewFixture("\(P.name)-binary-\(seed)") { fixture in
            let events = RandomEvents.make(count: 400, seed: seed)
            try await fixture.append(events, chunk: 13)
            let head = try await fixture.log.head().position
            var random = SplitMix64(seed: seed)
            let cut = LogPosition(random.next() % head) + 1
            let atCut = try await P.rebuild(from: fixture.log, until: cut)
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            try store.save(atCut.projection, position: atCut.position, recordedAt: atCut.recordedAt)
            let load = store.load(P.self)
            #expect(load.ignored.isEmpty, "\(load.ignored)")
            #expect(load.position == atCut.position && load.recordedAt == atCut.recordedAt)
            #expect(same(load.projection.makeView(), atCut.projection.makeView()), "seed \(seed): loaded view differs at \(cut)")
            var continued = load.projection
            for try await batch in fixture.log.read(from: cut + 1).batches { continued.apply(batch: batch) }
            let full = try await P.rebuild(from: fixture.log)
            #expect(same(continued.makeView(), full.projection.makeView()), "seed \(seed): snapshot at \(cut) + tail differs from a rebuild")
        }
    }

    /// A small, real snapshot file and its state.
    private func smallSnapshot(_ fixture: ViewFixture) async throws -> (bytes: [UInt8], store: SnapshotStore) {
        try await fixture.append(RandomEvents.make(count: 40, seed: 5))
        let rebuilt = try await SystemStatsProjection.rebuild(from: fixture.log)
        let store = SnapshotStore(directory: fixture.snapshotDirectory)
        try store.save(rebuilt.projection, position: rebuilt.position, recordedAt: rebuilt.recordedAt)
        let bytes = [UInt8](try #require(FileManager.default.contents(atPath: store.path(for: SystemStatsProjection.name))))
        return (bytes, store)
    }

    @Test func everyBitFlipAndTruncationIsRefused() async throws {
        try await withViewFixture { fixture in
            let (bytes, _) = try await smallSnapshot(fixture)
            guard case .success(let good) = SnapshotStore.decode(bytes) else { Issue.record("the good file does not decode"); return }
            #expect(throws: Never.self) { try SnapshotStore.decodeState(SystemStatsProjection.self, from: good) }
            for index in bytes.indices {
                for bit in [0x01, 0x10, 0x80] as [UInt8] {
                    var damaged = bytes
                    damaged[index] ^= bit
                    guard case .failure(let error) = SnapshotStore.decode(damaged) else {
                        Issue.record("flipping bit \(bit) of byte \(index) of \(bytes.count) went unnoticed")
                        continue
                    }
                    #expect(error.code == .corrupted)
                }
            }
            for length in 0..<bytes.count {
                guard case .failure = SnapshotStore.decode(Array(bytes.prefix(length))) else {
                    Issue.record("truncated to \(length) of \(bytes.count) went unnoticed")
                    continue
                }
            }
        }
    }

    /// Checksums aside, the state decoders themselves check every count and length: every
    /// prefix of a real state, and random bytes, framed as valid files, throw and never trap.
    @Test func stateDecodersRefuseShortAndRandomStates() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 120, seed: 8))
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            let stats = try await SystemStatsProjection.rebuild(from: fixture.log)
            let unlocked = try await UnlockedProfilesProjection.rebuild(from: fixture.log)
            let metrics = try await MetricsProjection.rebuild(from: fixture.log)
            try store.save(stats.projection, position: stats.position, recordedAt: stats.recordedAt)
            try store.save(unlocked.projection, position: unlocked.position, recordedAt: unlocked.recordedAt)
            try store.save(metrics.projection, position: metrics.position, recordedAt: metrics.recordedAt)
            var random = SplitMix64(seed: 77)
            func check<P: Projection>(_: P.Type) throws {
                guard case .valid(let snapshot) = SnapshotStore.readFile(atPath: store.path(for: P.name)) else {
                    Issue.record("\(P.name): no valid snapshot")
                    return
                }
                for length in 0..<snapshot.payload.count {
                    var short = snapshot
                    short.payload = Array(snapshot.payload.prefix(length))
                    #expect(throws: ProjectionError.self, "\(P.name) state cut to \(length)") { try SnapshotStore.decodeState(P.self, from: short) }
                }
                for _ in 0..<300 {
                    var noise = snapshot
                    noise.payload = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    _ = try? SnapshotStore.decodeState(P.self, from: noise)
                    // Noise after a valid first section header: deeper into the decoder.
                    noise.payload = Array(snapshot.payload.prefix(Int(random.next() % UInt64(snapshot.payload.count)))) + noise.payload
                    _ = try? SnapshotStore.decodeState(P.self, from: noise)
                }
            }
            try check(SystemStatsProjection.self)
            try check(UnlockedProfilesProjection.self)
            try check(MetricsProjection.self)
        }
    }

    /// The header's format version, rewritten with a valid header checksum.
    private func withFormat(_ format: UInt16, _ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        out[4] = UInt8(format & 0xFF)
        out[5] = UInt8(format >> 8)
        let nameLength = Int(out[6]) | Int(out[7]) << 8
        let crc = CRC32C.checksum(out[44..<(44 + nameLength)], continuing: CRC32C.checksum(out[0..<40]))
        withUnsafeBytes(of: crc.littleEndian) { for (i, b) in $0.enumerated() { out[40 + i] = b } }
        return out
    }

    /// A format-1 file as the previous build wrote it: JSON state in one payload.
    private func jsonSnapshot(position: UInt64) -> [UInt8] {
        let name = Array(SystemStatsProjection.name.utf8)
        let payload = Array("{\"searches\":3,\"usernames\":[\"a\"]}".utf8)
        var out: [UInt8] = Array("TLYS".utf8)
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        put(UInt16(1)); put(UInt16(name.count)); put(Int64(1)); put(position); put(Int64(0)); put(UInt32(1)); put(UInt64(payload.count))
        put(CRC32C.checksum(payload[...]))
        put(CRC32C.checksum(name[...], continuing: CRC32C.checksum(out[...])))
        return out + name + payload
    }

    @Test func otherFormatsVersionsAndJSONAreRefusedWithAReasonAndRebuilt() async throws {
        try await withViewFixture { fixture in
            let (bytes, store) = try await smallSnapshot(fixture)
            let path = store.path(for: SystemStatsProjection.name)
            let head = try await fixture.log.head().position
            let cases: [(String, [UInt8], String)] = [
                ("JSON (format 1)", jsonSnapshot(position: head), "format 1 (JSON state)"),
                ("format 3", withFormat(3, bytes), "snapshot format 3"),
                ("bit flip", { var b = bytes; b[b.count / 2] ^= 4; return b }(), "checksum"),
                ("truncated", Array(bytes.prefix(bytes.count - 1)), "trailer"),
            ]
            for (label, file, reason) in cases {
                try? FileManager.default.removeItem(atPath: store.previousPath(for: SystemStatsProjection.name))
                try Data(file).write(to: URL(fileURLWithPath: path))
                let load = store.load(SystemStatsProjection.self)
                #expect(load.file == nil && load.position == 0, "\(label) was trusted")
                #expect(load.ignored.count == 1 && load.ignored[0].contains(reason), "\(label): \(load.ignored)")
                // The runner reports it and rebuilds from the log.
                let recorder = Mutex<[ProjectionRunnerEvent]>([])
                let runner = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: store) { e in recorder.withLock { $0.append(e) } }
                let running = Task { try await runner.run() }
                #expect(await runner.waitForPosition(head, timeout: .seconds(20)))
                let rebuilt = try await SystemStatsProjection.rebuild(from: fixture.log)
                #expect(runner.current.view == rebuilt.projection.makeView(), "\(label)")
                running.cancel()
                try await running.value
                let events = recorder.withLock { $0 }
                #expect(events.contains { if case .snapshotIgnored(let r) = $0 { r.contains(reason) } else { false } }, "\(label): \(events)")
                #expect(!events.contains { if case .snapshotLoaded = $0 { true } else { false } }, "\(label)")
            }

            // Another projection version: passed over with its version named.
            guard case .valid(var snapshot) = SnapshotStore.readFile(atPath: store.path(for: SystemStatsProjection.name)) else {
                Issue.record("the runner wrote no valid snapshot")
                return
            }
            snapshot.version = SystemStatsProjection.version + 1
            try? FileManager.default.removeItem(atPath: store.previousPath(for: SystemStatsProjection.name))
            try store.write(snapshot)
            try? FileManager.default.removeItem(atPath: store.previousPath(for: SystemStatsProjection.name))
            let load = store.load(SystemStatsProjection.self)
            #expect(load.file == nil && load.ignored.count == 1 && load.ignored[0].contains("projection version \(snapshot.version)"), "\(load.ignored)")
        }
    }

    /// A state written in memory by `body`, framed as a file and read back.
    private func state(_ name: String, version: Int, _ body: (inout SnapshotWriter) -> Void) throws -> Snapshot {
        var writer = SnapshotWriter(fd: -1, path: "", name: name, version: version, position: 1, recordedAt: 0)
        body(&writer)
        let file = try writer.finish()
        guard case .success(let snapshot) = SnapshotStore.decode(file) else { throw TestFailure("the framed state does not decode") }
        return snapshot
    }

    /// The interning tables and the ids that point into them are checked like every other
    /// count: a string twice (also as canonically equal text), a string too long, invalid
    /// UTF-8, an id past its table, a column whose length is not its table's.
    @Test func internedStatesWithBadTablesOrIdsAreRefused() throws {
        func stats(usernames: [[UInt8]], pairs: [(UInt64, UInt64)] = [], users: [[UInt8]] = []) throws -> Snapshot {
            try state(SystemStatsProjection.name, version: SystemStatsProjection.version) { w in
                w.section(1, count: 4)
                for _ in 0..<(9 + 12) { w.signed(0) }
                w.section(2, count: usernames.count)
                for u in usernames { w.unsigned(UInt64(u.count) << 1); w.raw(u) }
                w.section(3, count: 0)
                w.section(4, count: 0)
                w.section(5, count: 0)
                w.section(6, count: users.count)
                for u in users { w.unsigned(UInt64(u.count) << 1); w.raw(u) }
                w.section(7, count: pairs.count)
                for (a, b) in pairs { w.unsigned(a); w.unsigned(b) }
                w.section(8, count: 0)
                w.section(9, count: 0)
            }
        }
        let good = try stats(usernames: [Array("a".utf8), Array("caf\u{E9}".utf8)], pairs: [(0, 1)], users: [Array("u".utf8)])
        let decoded = try SnapshotStore.decodeState(SystemStatsProjection.self, from: good)
        #expect(decoded.makeView().profiles.total == 2 && decoded.makeView().unlocks.distinct == 1)
        // Packed strings: a prefix, then hex digits two to a byte.
        func packed(_ header: UInt64, _ prefix: UInt64, _ rest: [UInt8]) throws -> Snapshot {
            try state(SystemStatsProjection.name, version: SystemStatsProjection.version) { w in
                w.section(1, count: 4)
                for _ in 0..<(9 + 12) { w.signed(0) }
                w.section(2, count: 1)
                w.unsigned(header); w.unsigned(prefix); w.raw(rest)
                for tag in 3...9 as ClosedRange<UInt8> { w.section(tag, count: 0) }
            }
        }
        let ten = try SnapshotStore.decodeState(SystemStatsProjection.self, from: try packed(10 << 1 | 1, 2, [0x70, 0x31, 0xDE, 0xAD, 0xBE, 0xEF]))
        #expect(ten.usernames.string(0) == "p1deadbeef")
        let bad: [(String, Snapshot, String)] = [
            ("packed prefix past the length", try packed(10 << 1 | 1, 11, []), "above the bound"),
            ("packed hex part too short", try packed(6 << 1 | 1, 0, [0x12, 0x34, 0x56]), "has a prefix"),
            ("packed hex part odd", try packed(9 << 1 | 1, 0, [0x12, 0x34, 0x56, 0x78, 0x90]), "has a prefix"),
            ("packed and cut short", try packed(10 << 1 | 1, 2, [0x70, 0x31, 0xDE]), "snapshot state"),
            ("Kelvin sign spelling stored", try stats(usernames: [Array("\u{212A}".utf8)]), "non-ASCII spelling"),
            ("a username twice", try stats(usernames: [Array("a".utf8), Array("a".utf8)]), "appears twice"),
            ("canonically equal twice", try stats(usernames: [Array("caf\u{E9}".utf8), Array("cafe\u{301}".utf8)]), "appears twice"),
            ("invalid UTF-8", try stats(usernames: [[0x61, 0xFF]]), "not UTF-8"),
            ("too long", try stats(usernames: [Array(repeating: 0x61, count: 4_097)]), "above the bound"),
            ("pair past the users", try stats(usernames: [Array("a".utf8)], pairs: [(1, 0)], users: [Array("u".utf8)]), "above the bound"),
            ("pair past the usernames", try stats(usernames: [Array("a".utf8)], pairs: [(0, 5)], users: [Array("u".utf8)]), "above the bound"),
            ("pair twice", try stats(usernames: [Array("a".utf8)], pairs: [(0, 0), (0, 0)], users: [Array("u".utf8)]), "appears twice"),
        ]
        for (label, snapshot, reason) in bad {
            do {
                _ = try SnapshotStore.decodeState(SystemStatsProjection.self, from: snapshot)
                Issue.record("\(label) was accepted")
            } catch let error as ProjectionError {
                #expect(error.code == .corrupted && error.message.contains(reason), "\(label): \(error)")
            }
        }

        func unlocked(unlockUsername: UInt64, profiles: Int, walletUsername: UInt64 = 0, movements: Int = 1, wallets: Int = 1) throws -> Snapshot {
            try state(UnlockedProfilesProjection.name, version: UnlockedProfilesProjection.version) { w in
                w.section(1, count: 1); w.unsigned(2); w.byte(UInt8(ascii: "u"))
                w.section(2, count: 1); w.unsigned(2); w.byte(UInt8(ascii: "a"))
                w.section(3, count: 1); w.unsigned(1); w.unsigned(unlockUsername); w.signed(0); w.signed(1); w.unsigned(1)
                w.section(4, count: profiles)
                for _ in 0..<profiles { w.byte(0) }
                w.section(5, count: 0)
                w.section(6, count: 0)
                // The wallet: balance -1, granted 0, spent 1, at position 1; its unlock movement(s).
                w.section(7, count: wallets)
                for _ in 0..<wallets {
                    w.signed(-1); w.signed(0); w.signed(1); w.unsigned(UInt64(movements))
                    w.unsigned(UInt64(movements))
                    for m in 0..<movements {
                        w.byte(1); w.unsigned(UInt64(m + 1)); w.signed(1); w.signed(0); w.signed(-1); w.unsigned(walletUsername)
                    }
                }
            }
        }
        #expect(throws: Never.self) { try SnapshotStore.decodeState(UnlockedProfilesProjection.self, from: try unlocked(unlockUsername: 0, profiles: 1)) }
        let loaded = try SnapshotStore.decodeState(UnlockedProfilesProjection.self, from: try unlocked(unlockUsername: 0, profiles: 1)).makeView().wallet(user: "u")
        #expect(loaded.balance == -1 && loaded.totalSpent == 1 && loaded.recent.map(\.detail) == ["a"])
        for (label, snapshot) in [
            ("a movement's username past the table", try unlocked(unlockUsername: 0, profiles: 1, walletUsername: 1)),
            ("more movements than a wallet keeps", try unlocked(unlockUsername: 0, profiles: 1, movements: 21)),
            ("wallets of another count than the users", try unlocked(unlockUsername: 0, profiles: 1, wallets: 2)),
        ] {
            #expect(throws: ProjectionError.self, "\(label)") { try SnapshotStore.decodeState(UnlockedProfilesProjection.self, from: snapshot) }
        }
        #expect(throws: ProjectionError.self) { try SnapshotStore.decodeState(UnlockedProfilesProjection.self, from: try unlocked(unlockUsername: 1, profiles: 1)) }
        #expect(throws: ProjectionError.self) { try SnapshotStore.decodeState(UnlockedProfilesProjection.self, from: try unlocked(unlockUsername: 0, profiles: 2)) }
    }

    /// A version-1 state (strings in every section, as the previous build wrote it) is
    /// passed over with its version named, and the runner rebuilds the view from the log.
    @Test func versionOneStatesArePassedOverAndRebuilt() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 120, seed: 21))
            let head = try await fixture.log.head().position
            let store = SnapshotStore(directory: fixture.snapshotDirectory)
            // system-stats version 1: counters, then string sections.
            let v1 = try state(SystemStatsProjection.name, version: 1) { w in
                w.section(1, count: 4)
                for _ in 0..<(9 + 12) { w.signed(1) }
                w.section(2, count: 2); w.string("creator.1"); w.string("creator.2")
                w.section(3, count: 1); w.string("creator.1")
                w.section(4, count: 1); w.string("p1"); w.byte(1)
                w.section(5, count: 1); w.string("u1"); w.string("creator.1")
                w.section(6, count: 1); w.string("u1")
                w.section(7, count: 0)
                w.section(8, count: 0)
            }
            try store.write(v1)
            try? FileManager.default.removeItem(atPath: store.previousPath(for: SystemStatsProjection.name))
            let recorder = Mutex<[ProjectionRunnerEvent]>([])
            let runner = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: store) { e in recorder.withLock { $0.append(e) } }
            let running = Task { try await runner.run() }
            #expect(await runner.waitForPosition(head, timeout: .seconds(20)))
            let rebuilt = try await SystemStatsProjection.rebuild(from: fixture.log)
            #expect(runner.current.view == rebuilt.projection.makeView())
            running.cancel()
            try await running.value
            let events = recorder.withLock { $0 }
            #expect(events.contains { if case .snapshotIgnored(let r) = $0 { r.contains("projection version 1, this build folds version 2") } else { false } }, "\(events)")
            #expect(!events.contains { if case .snapshotLoaded = $0 { true } else { false } })
            // The runner's final snapshot is of version 2 and loads.
            let load = store.load(SystemStatsProjection.self)
            #expect(load.file != nil && load.position == head, "\(load.ignored)")
        }
    }
}

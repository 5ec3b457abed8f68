import TallyTestSupport
import Testing
@testable import EventLog

/// The fsync policies: parsing, what each syncs, and that every policy's acknowledged
/// appends read back before and after reopening.
@Suite(.timeLimit(.minutes(5))) struct FsyncPolicyTests {
    @Test func parsing() {
        #expect(FsyncPolicy(parsing: "always") == .always)
        #expect(FsyncPolicy(parsing: "never") == .never)
        #expect(FsyncPolicy(parsing: "interval") == .interval(milliseconds: 100))
        #expect(FsyncPolicy(parsing: "interval:250") == .interval(milliseconds: 250))
        #expect(FsyncPolicy(parsing: "interval:60000") == .interval(milliseconds: 60_000))
        for bad in ["", "Always", "sometimes", "interval:", "interval:0", "interval:-5", "interval:60001", "interval:abc", "interval 5"] {
            #expect(FsyncPolicy(parsing: bad) == nil, "'\(bad)'")
        }
        #expect(FsyncPolicy.interval(milliseconds: 7).description == "interval(7ms)")
    }

    @Test(arguments: [FsyncPolicy.always, .never, .interval(milliseconds: 5), .interval(milliseconds: 60_000)])
    func everyPolicyKeepsWhatItAcknowledged(_ policy: FsyncPolicy) async throws {
        try await withTemporaryDirectory("policy") { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: policy))
            for i in 0..<20 {
                let result = try await log.append(to: "sync-1", expected: i == 0 ? .noStream : .exact(UInt64(i - 1)),
                                                  events: [textEvent("e\(i)")])
                #expect(result.positions == LogPosition(i + 1)...LogPosition(i + 1))
            }
            let stats = log.statistics()
            #expect(stats.commits == 20 && stats.events == 20)
            switch policy {
            case .always:
                // Sequential appends: one fdatasync per batch, each before its acknowledgement.
                #expect(stats.syncs == 20)
                #expect(stats.recentSyncNanoseconds.count == 20)
            case .never, .interval(milliseconds: 60_000):
                #expect(stats.syncs == 0)
            case .interval:
                break
            }
            #expect(stats.bytesStored == (try fileSize(dir.sub(try segmentNames(dir.path)[0]))))
            try await log.close()
            let reopened = try FileLog(directory: dir.path, options: .init(fsync: policy))
            #expect(reopened.recovery == FileLog.RecoveryReport())
            #expect(try await readAll(reopened).map(text) == (0..<20).map { "e\($0)" })
            try await reopened.close()
        }
    }

    @Test func intervalPolicySyncsInTheBackground() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .interval(milliseconds: 20)))
            // The first append lands within the interval of the writer's start: not synced yet
            // (or synced already, if the machine is slow); either way a sync follows on its own.
            _ = try await log.append(to: "sync-1", events: [textEvent("a")])
            let synced = await eventually { log.statistics().syncs >= 1 }
            #expect(synced, "no background fdatasync within 20 s under interval(20ms)")
            // Nothing new written: the writer goes to sleep owing no sync, so none follows
            // until something wakes it.
            #expect(await eventually { log.writerSleepsUntilWoken }, "the writer still owes a sync after it synced")
            let after = log.statistics().syncs
            #expect(after >= 1)
            #expect(log.writerSleepsUntilWoken && log.statistics().syncs == after)
            try await log.close()
        }
    }
}

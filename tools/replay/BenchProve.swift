import ArgumentParser
import EventLog

/// `replay bench prove`: inclusion proofs at random positions of an existing log, each
/// checked, timed in-process once the log and its tree index are open (what an audit request
/// costs a running server); the open and any index catch-up are reported apart.
struct BenchProve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Time inclusion proofs (and their tree heads) at random positions; p50/p99 per proof."
    )

    @OptionGroup var target: LogOption
    @Option(help: "Proofs to make.") var proofs = 1_000
    @Option(help: "Seed of the positions.") var seed: UInt64 = 7

    func validate() throws {
        guard proofs > 0, proofs <= 1_000_000 else { throw ValidationError("--proofs must be 1...1,000,000") }
    }

    func run() async throws {
        let opening = monotonicSeconds()
        let (store, head) = try await target.openAtHead()
        guard head > 0 else {
            printError("the log at \(target.name) is empty")
            throw ReplayExit.usage
        }
        var out = JSONObject()
        do {
            let index = try await MerkleTreeIndex.open(for: store)
            try await index.catchUp(store, head: head)
            let opened = monotonicSeconds() - opening
            let root = try await index.root(size: head, store: store)
            var rng = SplitMix64(seed: seed)
            var times: [Double] = []
            times.reserveCapacity(proofs)
            for _ in 0..<proofs {
                let position = rng.next() % head + 1
                let started = monotonicSeconds()
                let path = try await index.inclusionProof(index: position - 1, size: head, store: store)
                let leaf = try await index.chunkLeaves((position - 1) >> MerkleTreeIndex.chunkLevel, limit: position, store: store).last!
                times.append(monotonicSeconds() - started)
                guard MerkleProof.verifyInclusion(index: position - 1, size: head, leaf: leaf, path: path, root: root) else {
                    printError("the proof of position \(position) does not verify")
                    throw ReplayExit.damaged
                }
            }
            times.sort()
            out.set("command", "bench prove")
            out.set("events", head)
            out.set("proofs", proofs)
            out.set("open_and_catch_up_seconds", opened, decimals: 3)
            out.set("proof_p50_ms", times[times.count / 2] * 1e3, decimals: 3)
            out.set("proof_p99_ms", times[min(times.count - 1, times.count * 99 / 100)] * 1e3, decimals: 3)
            out.set("proof_max_ms", times.last! * 1e3, decimals: 3)
            out.set("log", target.name)
            try await store.close()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw target.unreadable("cannot prove from the log at \(target.name)", error)
        }
        print(out.rendered)
    }
}

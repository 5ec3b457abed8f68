import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#endif

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum and the hash chain of a log; report the first break.",
        discussion: "Prints one JSON object. Exit 0 when intact, 1 at the first break (named by position), 2 when unreadable."
    )

    @OptionGroup var target: LogOption
    @Option(help: "A digest file written earlier by `replay digest`: also check the log still holds that exact prefix.")
    var digest: String?

    func run() async throws {
        var expected: LogHead?
        if let digest {
            do {
                expected = try DigestFile.read(digest)
            } catch {
                printError("cannot use digest \(digest): \(error)")
                throw ReplayExit.unreadable
            }
        }
        try target.requireLog()
        let progress = Progress(label: "verify")
        let report: LogVerifier.Report
        do {
            if PostgresURL.matches(target.log) {
                let store = try PostgresLog(url: target.log, options: .init(readOnly: true))
                report = try await store.verify(expected: expected) { progress.update($0) }
                await store.close()
            } else {
                report = try LogVerifier.verify(directory: target.log, expected: expected) { progress.update($0) }
            }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        var out = JSONObject()
        out.set("intact", report.intact)
        out.set("segments", report.segments)
        out.set("batches", report.batches)
        out.set("events", report.events)
        out.set("head_position", report.head.position)
        out.set("head_chain_hash", report.head.chainHashHex)
        if let torn = report.tornTailBytes { out.set("torn_tail_bytes", torn) }
        if let expected { out.set("digest_position", expected.position) }
        if let broken = report.firstBreak {
            var b = JSONObject()
            b.set("position", broken.position)
            b.set("segment", broken.segment)
            b.set("offset", broken.offset)
            b.set("reason", broken.reason)
            out.set("first_break", b)
        }
        print(out.rendered)
        if !report.intact {
            printError("log damaged at \(report.firstBreak!)")
            throw ReplayExit.damaged
        }
    }
}

struct Digest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the head position and its chain hash as JSON, to keep elsewhere and check later with `verify --digest`."
    )

    @OptionGroup var target: LogOption

    func run() async throws {
        let head: LogHead
        let opened = try target.open()
        do {
            head = try await opened.head()
            try await opened.close()
        } catch {
            throw target.unreadable("cannot open the log at \(target.name)", error)
        }
        print(DigestFile.render(head))
    }
}

/// The digest document: `{"position":P,"chain_hash":"<64 hex>"}`.
enum DigestFile {
    static func render(_ head: LogHead) -> String {
        var out = JSONObject()
        out.set("position", head.position)
        out.set("chain_hash", head.chainHashHex)
        return out.rendered
    }

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the two fields back with a strict little scanner (the document is ours).
    static func read(_ path: String) throws -> LogHead {
        guard let file = fopen(path, "r") else { throw Invalid(description: "cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 64 << 10 {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let position = field(text, "position").flatMap({ UInt64($0) }),
              let hashText = field(text, "chain_hash")?.trimmingCharacters(in: "\""),
              let hash = parseChainHash(hex: hashText)
        else { throw Invalid(description: "\(path) is not a digest written by `replay digest`") }
        return LogHead(position: position, chainHash: hash)
    }

    private static func field(_ text: String, _ key: String) -> String? {
        guard let keyRange = text.range(of: "\"\(key)\"") else { return nil }
        var rest = text[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        rest = rest.prefix { $0 != "," && $0 != "}" && $0 != "\n" }
        return String(rest).trimmingCharacters(in: " ")
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(self.drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }

    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

func printError(_ message: String) {
    writeLine(2, "replay: " + message)
}

/// One unbuffered write(2) per line: lines below PIPE_BUF reach a pipe whole, even if the
/// process is killed right after.
func writeLine(_ descriptor: Int32, _ text: String) {
    var line = text + "\n"
    line.withUTF8 { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// A one-line progress indicator on stderr, shown only when stderr is a terminal.
final class Progress: @unchecked Sendable {
    private let label: String
    private let enabled = isatty(2) != 0
    private var lastPrint: UInt64 = 0
    /// The position at which the work is done, for a percentage.
    private let total: UInt64?

    init(label: String, total: UInt64? = nil) {
        self.label = label
        self.total = total
    }

    func update(_ position: UInt64) {
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) * 1_000 + UInt64(ts.tv_nsec) / 1_000_000
        guard now - lastPrint >= 200 else { return }
        lastPrint = now
        var line = "\r\(label): position \(position)"
        if let total, total > 0 {
            let percent = min(100, position * 100 / total)
            let filled = Int(percent / 5)
            line += " of \(total) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] \(percent)%"
        }
        var bytes = Array(line.utf8)
        _ = write(2, &bytes, bytes.count)
    }

    func finish() {
        guard enabled, lastPrint > 0 else { return }
        writeLine(2, "")
    }
}

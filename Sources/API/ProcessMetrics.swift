#if canImport(Glibc)
import Glibc
#endif

/// The process figures Prometheus clients conventionally export (`process_*`), read from
/// `/proc/self` on Linux at scrape time. Parsing is pure (`parse…`), so it is tested on
/// fixed text; on other systems, or when `/proc` is unreadable, the figures are absent.
struct ProcessFigures: Sendable, Hashable {
    var residentBytes: Double
    var virtualBytes: Double
    var cpuSeconds: Double
    /// Seconds since 1970 when the process started.
    var startTimeSeconds: Double
    var openFileDescriptors: Double?
    var maxFileDescriptors: Double?

    /// The figures of this process now, or nil when `/proc` cannot be read.
    static func current() -> ProcessFigures? {
        #if os(Linux)
        guard let stat = readSmallFile("/proc/self/stat"), let system = readSmallFile("/proc/stat"),
              let bootTime = parseBootTime(system)
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        guard ticks > 0, page > 0, var figures = parseStat(stat, ticksPerSecond: ticks, pageBytes: page, bootTime: bootTime) else { return nil }
        figures.openFileDescriptors = countEntries("/proc/self/fd")
        figures.maxFileDescriptors = readSmallFile("/proc/self/limits").flatMap(parseMaxOpenFiles)
        return figures
        #else
        return nil
        #endif
    }

    /// Fields of `/proc/self/stat` (proc(5)): after the command in parentheses, which may
    /// hold spaces, field 14 utime and 15 stime (ticks), 22 starttime (ticks after boot),
    /// 23 vsize (bytes), 24 rss (pages).
    static func parseStat(_ text: String, ticksPerSecond: Double, pageBytes: Double, bootTime: Double) -> ProcessFigures? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        // Field 3 (state) is the first after the command.
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ number: Int) -> Double? {
            let index = number - 3
            return fields.indices.contains(index) ? Double(fields[index].filter { !$0.isNewline }) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24) else {
            return nil
        }
        return ProcessFigures(residentBytes: rss * pageBytes, virtualBytes: vsize, cpuSeconds: (utime + stime) / ticksPerSecond,
                              startTimeSeconds: bootTime + start / ticksPerSecond)
    }

    /// `btime` of `/proc/stat`: the boot time in seconds since 1970.
    static func parseBootTime(_ text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).filter { !$0.isWhitespace })
        }
        return nil
    }

    /// The soft limit of `Max open files` in `/proc/self/limits`; nil when unlimited.
    static func parseMaxOpenFiles(_ text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix("Max open files") {
            let words = line.dropFirst("Max open files".count).split(separator: " ", omittingEmptySubsequences: true)
            return words.first.flatMap { Double($0) }
        }
        return nil
    }

    #if os(Linux)
    /// A file of `/proc`, whose size reads as 0, read to its end (at most 64 KiB).
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while bytes.count < 65_536 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Entries of a directory other than `.` and `..` (the descriptor reading it included,
    /// as every client library counts it).
    private static func countEntries(_ path: String) -> Double? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(3)) }
            if name[0] == UInt8(ascii: "."), name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0) { continue }
            count += 1
        }
        return Double(count)
    }
    #endif
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func ioError(_ call: String, _ path: String, _ what: String) -> EventLogError {
    let code = errno
    return EventLogError(.io, "\(what) (\(path)): \(systemErrorMessage(code))", cause: SystemCallError(call: call, errno: code))
}

/// A file descriptor with the positioned, EINTR-safe calls the log needs.
/// Not Foundation: this is on the read and write hot paths.
final class SystemFile: @unchecked Sendable {
    let path: String
    private(set) var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { if descriptor >= 0 { _ = Glibc.close(descriptor) } }

    static func open(_ path: String, writable: Bool, create: Bool = false) throws -> SystemFile {
        var flags = writable ? O_RDWR : O_RDONLY
        flags |= O_CLOEXEC
        if create { flags |= O_CREAT }
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else { throw ioError("open", path, "cannot open") }
        return SystemFile(path: path, descriptor: fd)
    }

    func size() throws -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ioError("fstat", path, "cannot stat") }
        return Int(info.st_size)
    }

    /// Reads exactly `buffer.count` bytes at `offset`, or throws (short files included).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("pread", path, "cannot read \(buffer.count) bytes at offset \(offset)")
            }
            if n == 0 {
                throw EventLogError(.corrupted, "\(path) ends at \(offset + done), inside a read of \(buffer.count) bytes at offset \(offset)")
            }
            done += n
        }
    }

    func read(count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { (buffer) throws in try read(into: buffer, at: offset) }
        return bytes
    }

    /// Writes all of `parts` at `offset` with as few system calls as the kernel allows.
    func write(_ parts: [UnsafeRawBufferPointer], at offset: Int) throws {
        var written = 0
        let total = parts.reduce(0) { $0 + $1.count }
        while written < total {
            var skip = written
            var vectors: [iovec] = []
            for part in parts {
                if skip >= part.count {
                    skip -= part.count
                    continue
                }
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: part.baseAddress! + skip), iov_len: part.count - skip))
                skip = 0
            }
            let n = vectors.withUnsafeBufferPointer { pwritev(descriptor, $0.baseAddress, Int32($0.count), off_t(offset + written)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("pwritev", path, "cannot write \(total) bytes at offset \(offset)")
            }
            written += n
        }
    }

    func syncData() throws {
        guard fdatasync(descriptor) == 0 else { throw ioError("fdatasync", path, "cannot sync data") }
    }

    func sync() throws {
        guard fsync(descriptor) == 0 else { throw ioError("fsync", path, "cannot sync") }
    }

    func truncate(to size: Int) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw ioError("ftruncate", path, "cannot truncate to \(size) bytes") }
    }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}

/// Directory operations the log needs: listing, creating, syncing, renaming.
enum Directory {
    static func create(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw ioError("mkdir", current, "cannot create directory")
            }
        }
    }

    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ioError("opendir", path, "cannot list directory") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func sync(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open", path, "cannot open directory to sync it") }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw ioError("fsync", path, "cannot sync directory") }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw ioError("rename", from, "cannot rename to \(to)") }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Writes `bytes` to `path` atomically: temporary file, fsync, rename, directory fsync.
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws {
        let temporary = path + ".tmp"
        let file = try SystemFile.open(temporary, writable: true, create: true)
        try file.truncate(to: 0)
        try bytes.withUnsafeBytes { (raw) throws in try file.write([raw], at: 0) }
        try file.sync()
        file.close()
        try rename(temporary, path)
        try sync(directory)
    }
}

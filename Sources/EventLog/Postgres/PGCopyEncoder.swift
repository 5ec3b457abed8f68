/// Rows in PostgreSQL's binary COPY format: one round trip for a whole group of rows,
/// no SQL text, no escaping.
struct PGCopyEncoder {
    private(set) var bytes: [UInt8]

    init() {
        bytes = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]
        bytes.appendBigEndian(Int32(0))  // flags
        bytes.appendBigEndian(Int32(0))  // header extension length
    }

    mutating func beginRow(fields: Int) { bytes.appendBigEndian(Int16(fields)) }

    mutating func add(_ value: Int64) {
        bytes.appendBigEndian(Int32(8))
        bytes.appendBigEndian(value)
    }

    mutating func add(_ value: Int32) {
        bytes.appendBigEndian(Int32(4))
        bytes.appendBigEndian(value)
    }

    mutating func add(_ text: String) {
        bytes.appendBigEndian(Int32(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }

    mutating func add(_ raw: UnsafeRawBufferPointer) {
        bytes.appendBigEndian(Int32(raw.count))
        bytes.append(contentsOf: raw)
    }

    mutating func addNull() { bytes.appendBigEndian(Int32(-1)) }

    mutating func finish() -> [UInt8] {
        bytes.appendBigEndian(Int16(-1))
        return bytes
    }
}

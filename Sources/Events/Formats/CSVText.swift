/// RFC 4180 fields: quoted when they hold a comma, a quote, CR or LF (quotes doubled),
/// otherwise copied as they are. Shared by `replay export --format csv` (through
/// `EventLine.renderCSV`) and its header row.
public enum CSVText {
    public static func appendField(_ field: String, to bytes: inout [UInt8]) {
        var field = field
        field.withUTF8 { appendField(UnsafeRawBufferPointer($0), to: &bytes) }
    }

    public static func appendField(_ field: [UInt8], to bytes: inout [UInt8]) {
        field.withUnsafeBytes { appendField($0, to: &bytes) }
    }

    static func appendField(_ utf8: UnsafeRawBufferPointer, to bytes: inout [UInt8]) {
        var needsQuotes = false
        for byte in utf8 where byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == 0x0A || byte == 0x0D {
            needsQuotes = true
            break
        }
        guard needsQuotes else {
            bytes.append(contentsOf: utf8)
            return
        }
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        for i in 0..<utf8.count where utf8[i] == UInt8(ascii: "\"") {
            // Copy through the quote, then write it once more.
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart...i]))
            bytes.append(UInt8(ascii: "\""))
            runStart = i + 1
        }
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart...]))
        bytes.append(UInt8(ascii: "\""))
    }
}

import Events

/// A JSON object with keys in insertion order, so output is stable and diffable; no
/// Foundation needed for the flat objects the commands print.
struct JSONObject {
    private var fields: [(String, String)] = []

    mutating func set(_ key: String, _ value: String) { fields.append((key, quote(value))) }
    mutating func set(_ key: String, _ value: Int) { fields.append((key, String(value))) }
    mutating func set(_ key: String, _ value: UInt64) { fields.append((key, String(value))) }
    mutating func set(_ key: String, _ value: Bool) { fields.append((key, value ? "true" : "false")) }
    mutating func set(_ key: String, _ value: Double, decimals: Int = 3) { fields.append((key, format(value, decimals: decimals))) }
    mutating func set(_ key: String, _ value: JSONObject) { fields.append((key, value.rendered)) }
    /// Appends every field of `other`.
    mutating func merge(_ other: JSONObject) { fields += other.fields }

    var rendered: String {
        "{" + fields.map { "\(quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}

func quote(_ string: String) -> String { JSONText.quoted(string) }

/// Fixed-point rendering without Foundation's formatters.
func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let digits = String(fraction)
    return sign + String(whole) + "." + String(repeating: "0", count: decimals - digits.count) + digits
}

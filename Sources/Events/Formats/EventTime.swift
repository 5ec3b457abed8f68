/// Event time as people read it: ISO 8601 in UTC with microseconds, the precision of the
/// log's `recorded_at`. Civil-date arithmetic is done here (Howard Hinnant's algorithms)
/// rather than with Foundation, so that export and import stay fast and allocation-light.
public enum EventTime {
    static let microsPerSecond: Int64 = 1_000_000
    static let microsPerDay: Int64 = 86_400 * microsPerSecond

    /// `2026-11-25T14:03:07.123456Z` for microseconds since 1970-01-01 UTC (always six
    /// fraction digits, so the text sorts like the time).
    public static func iso8601(micros: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        appendISO8601(micros: micros, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func appendISO8601(micros: Int64, to bytes: inout [UInt8]) {
        let (days, inDay) = micros.dividingFloor(by: microsPerDay)
        let (year, month, day) = civil(fromDays: days)
        let seconds = inDay / microsPerSecond
        let fraction = inDay % microsPerSecond
        if year < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(year.magnitude, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(month), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(day), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(UInt64(seconds / 3600), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(seconds / 60 % 60), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(seconds % 60), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        appendDigits(UInt64(fraction), width: 6, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Parses `2026-11-25T14:03:07Z`, with an optional fraction of 1–6 digits and a `Z` or
    /// `±HH:MM` offset, or (when `allowDateOnly`) `2026-11-25`, meaning its midnight UTC.
    /// Returns microseconds since 1970-01-01 UTC; throws `DomainError(.invalidField)`.
    public static func parseISO8601(_ text: String, field: String = "time", allowDateOnly: Bool = true) throws -> Int64 {
        var text = text
        return try text.withUTF8 { try parseISO8601(UnsafeRawBufferPointer($0), field: field, allowDateOnly: allowDateOnly) }
    }

    /// `parseISO8601` for callers that only need to know whether the text is a time.
    public static func parse(_ text: String) -> Int64? {
        try? parseISO8601(text)
    }

    static func parseISO8601(_ b: UnsafeRawBufferPointer, field: String, allowDateOnly: Bool) throws -> Int64 {
        func invalid(_ why: String) -> DomainError {
            let shown = String(decoding: b.prefix(40), as: UTF8.self)
            return DomainError.invalid(field, "'\(shown)' is not an ISO 8601 UTC time such as 2026-11-25T14:03:07Z\(allowDateOnly ? " or 2026-11-25" : ""): \(why)")
        }
        var i = 0
        func number(_ width: Int, _ what: String) throws -> Int {
            guard b.count - i >= width else { throw invalid("\(what) is missing") }
            var value = 0
            for _ in 0..<width {
                let c = b[i]
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw invalid("\(what) must be \(width) digits") }
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                i += 1
            }
            return value
        }
        func expect(_ c: UInt8, _ what: String) throws {
            guard i < b.count, b[i] == c else { throw invalid("expected \(what)") }
            i += 1
        }
        let year = try number(4, "the year")
        try expect(UInt8(ascii: "-"), "'-' after the year")
        let month = try number(2, "the month")
        try expect(UInt8(ascii: "-"), "'-' after the month")
        let day = try number(2, "the day")
        guard (1...12).contains(month) else { throw invalid("month \(month) is not 1...12") }
        let monthDays = daysIn(month: month, year: year)
        guard (1...monthDays).contains(day) else { throw invalid("day \(day) is not 1...\(monthDays)") }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        if i == b.count {
            guard allowDateOnly else { throw invalid("a time of day is required") }
            return days * microsPerDay
        }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") else { throw invalid("expected 'T' after the date") }
        i += 1
        let hour = try number(2, "the hour")
        try expect(UInt8(ascii: ":"), "':' after the hour")
        let minute = try number(2, "the minute")
        try expect(UInt8(ascii: ":"), "':' after the minute")
        let second = try number(2, "the second")
        guard hour < 24, minute < 60, second < 60 else { throw invalid("time of day \(hour):\(minute):\(second) is out of range") }
        var fraction: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                guard count < 6 else { throw invalid("more than 6 fraction digits (the log keeps microseconds)") }
                fraction = fraction * 10 + Int64(b[i] - UInt8(ascii: "0"))
                count += 1
                i += 1
            }
            guard count > 0 else { throw invalid("expected digits after '.'") }
            for _ in count..<6 { fraction *= 10 }
        }
        var offsetMinutes = 0
        guard i < b.count else { throw invalid("expected 'Z' or an offset such as +02:00") }
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            let hours = try number(2, "the offset hours")
            try expect(UInt8(ascii: ":"), "':' in the offset")
            let minutes = try number(2, "the offset minutes")
            guard hours < 24, minutes < 60 else { throw invalid("offset is out of range") }
            offsetMinutes = sign * (hours * 60 + minutes)
        default:
            throw invalid("expected 'Z' or an offset such as +02:00")
        }
        guard i == b.count else { throw invalid("unexpected text after the time") }
        let seconds = Int64(hour * 3600 + minute * 60 + second - offsetMinutes * 60)
        return days * microsPerDay + seconds * microsPerSecond + fraction
    }

    // MARK: Civil dates

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01.
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `value` in decimal, zero-padded to `width`; no array per call (export writes a time
    /// per event, seven numbers each).
    private static func appendDigits(_ value: UInt64, width: Int, to bytes: inout [UInt8]) {
        var count = 1
        var limit: UInt64 = 10
        while count < 20 && value >= limit {
            count += 1
            limit = limit &* 10
        }
        for _ in count..<max(width, count) { bytes.append(UInt8(ascii: "0")) }
        let start = bytes.count
        for _ in 0..<count { bytes.append(0) }
        var v = value
        bytes.withUnsafeMutableBufferPointer { buffer in
            var i = start + count - 1
            repeat {
                buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                i -= 1
            } while i >= start
        }
    }
}

extension Int64 {
    /// Quotient rounded toward −∞ and the non-negative remainder.
    func dividingFloor(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var (q, r) = quotientAndRemainder(dividingBy: divisor)
        if r < 0 {
            q -= 1
            r += divisor
        }
        return (q, r)
    }
}

import HeraldCore

/// The words the renderer writes itself: a link's lifetime ("24 hours") and times in a
/// human form ("4 March 2025 at 14:30 UTC"). Chosen by the primary language of the
/// templates' locale; a language without an entry here gets English.
struct MailLocalization: Sendable {
    let minute: (one: String, other: String)
    let hour: (one: String, other: String)
    let day: (one: String, other: String)
    let and: String
    let months: [String]
    let dateTime: @Sendable (_ day: Int, _ month: String, _ year: Int, _ time: String) -> String

    static let english = MailLocalization(
        minute: ("minute", "minutes"), hour: ("hour", "hours"), day: ("day", "days"), and: "and",
        months: [
            "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
            "November", "December",
        ],
        dateTime: { day, month, year, time in "\(day) \(month) \(year) at \(time) UTC" })

    static let portuguese = MailLocalization(
        minute: ("minuto", "minutos"), hour: ("hora", "horas"), day: ("dia", "dias"), and: "e",
        months: [
            "janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
            "novembro", "dezembro",
        ],
        dateTime: { day, month, year, time in "\(day) de \(month) de \(year), às \(time) UTC" })

    static func forLocale(_ locale: LanguageTag) -> MailLocalization {
        let language = locale.rawValue.prefix { $0 != "-" }.lowercased()
        switch language {
        case "pt": return .portuguese
        default: return .english
        }
    }

    private func count(_ n: Int64, _ unit: (one: String, other: String)) -> String {
        "\(n) \(n == 1 ? unit.one : unit.other)"
    }

    /// "15 minutes", "1 hour", "24 hours", "1 hour and 30 minutes", "7 days" (days only from
    /// two days on). A part of a minute counts as a minute, so nothing reads "0 minutes".
    func words(for lifetime: Duration) -> String {
        var minutes = max(1, (lifetime.secondsRoundedUp + 59) / 60)
        if minutes % (24 * 60) == 0 && minutes >= 48 * 60 {
            return count(minutes / (24 * 60), day)
        }
        let hours = minutes / 60
        minutes %= 60
        switch (hours, minutes) {
        case (0, _): return count(minutes, minute)
        case (_, 0): return count(hours, hour)
        default: return "\(count(hours, hour)) \(and) \(count(minutes, minute))"
        }
    }

    /// The time in UTC, to the minute: "4 March 2025 at 14:30 UTC".
    func human(_ time: EventTime) -> String {
        // RFC3339.format writes `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
        let text = Array(RFC3339.format(time).utf8)
        guard text.count == 24 else { return RFC3339.format(time) }
        func number(_ range: Range<Int>) -> Int { range.reduce(0) { $0 * 10 + Int(text[$1] - 0x30) } }
        let clock = String(decoding: text[11..<16], as: UTF8.self)
        return dateTime(number(8..<10), months[number(5..<7) - 1], number(0..<4), clock)
    }
}

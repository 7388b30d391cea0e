/// Reads a rendered message the way a receiving MTA or mail client would (RFC 5322, no
/// obsolete syntax) and checks what Herald promises about it. Written from the RFC, not
/// from `MailRendering`.
enum MessageCheck {
    /// The header fields Herald writes, each exactly once (Reply-To at most once).
    static let fields = [
        "date", "from", "to", "subject", "message-id", "mime-version", "auto-submitted", "content-language", "x-herald-kind",
        "content-type",
    ]

    static func check(_ bytes: [UInt8], recipient: String, from: String, replyTo: String?) throws(FuzzFailure) {
        // Every CR is followed by LF and every LF preceded by CR.
        for (index, byte) in bytes.enumerated() {
            if byte == 13 {
                try HeraldFuzzing.check(index + 1 < bytes.count && bytes[index + 1] == 10, "bare CR at byte \(index)")
            } else if byte == 10 {
                try HeraldFuzzing.check(index > 0 && bytes[index - 1] == 13, "bare LF at byte \(index)")
            }
        }
        guard let end = find([13, 10, 13, 10], in: bytes) else { throw FuzzFailure("no end of the header section") }
        let lines = split(Array(bytes[..<end]))

        // Unfold: a line starting with a space or tab continues the field before it.
        var headers: [(name: String, value: [UInt8])] = []
        for line in lines {
            try HeraldFuzzing.check(line.count <= 998, "a header line of \(line.count) bytes")
            try HeraldFuzzing.check(!line.allSatisfy { $0 == 32 || $0 == 9 }, "a header line of whitespace only")
            if line.first == 32 || line.first == 9 {
                guard !headers.isEmpty else { throw FuzzFailure("a continuation line before any field") }
                headers[headers.count - 1].value += line
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                line[..<colon].allSatisfy({ $0 > 32 && $0 < 127 })
            else {
                throw FuzzFailure("a header line that is no field: \(Invariants.debug(String(decoding: line, as: UTF8.self)))")
            }
            headers.append((String(decoding: line[..<colon], as: UTF8.self).lowercased(), Array(line[(colon + 1)...])))
        }
        var counts: [String: Int] = [:]
        for header in headers { counts[header.name, default: 0] += 1 }
        for name in fields {
            try HeraldFuzzing.check(counts[name] == 1, "\(counts[name] ?? 0) \(name) fields")
        }
        try HeraldFuzzing.check(counts["reply-to"] == (replyTo == nil ? nil : 1), "\(counts["reply-to"] ?? 0) reply-to fields")
        try HeraldFuzzing.check(
            Set(counts.keys).subtracting(fields + ["reply-to"]).isEmpty, "unexpected fields \(Set(counts.keys).subtracting(fields))")

        for header in headers {
            switch header.name {
            case "to": try single(header.value, address: recipient, "To")
            case "from": try single(header.value, address: from, "From")
            case "reply-to": try single(header.value, address: replyTo ?? "", "Reply-To")
            case "subject", "auto-submitted", "content-language", "x-herald-kind": try encodedWords(header.value, header.name)
            default: break
            }
        }

        // The body: two parts, then the closing boundary, last.
        let contentType = String(decoding: headers.first { $0.name == "content-type" }!.value, as: UTF8.self)
        guard let start = contentType.firstRange(of: "boundary=\""), let close = contentType[start.upperBound...].firstIndex(of: "\"")
        else { throw FuzzFailure("no boundary in \(contentType)") }
        let boundary = Array("--\(contentType[start.upperBound..<close])".utf8)
        let body = split(Array(bytes[(end + 4)...]))
        try HeraldFuzzing.check(body.filter { $0 == boundary }.count == 2, "not two parts")
        try HeraldFuzzing.check(body.last == boundary + Array("--".utf8), "the message does not end with the closing boundary")
        try HeraldFuzzing.check(body.allSatisfy { $0.count <= 998 }, "a body line over 998 bytes")
    }

    /// The field holds exactly one mailbox (`[display-name] <addr>` or `addr`), whose
    /// address is `address`, which is itself one plain mailbox.
    static func single(_ value: [UInt8], address: String, _ field: String) throws(FuzzFailure) {
        let mailboxes = try addressList(value, field)
        try HeraldFuzzing.check(mailboxes.count == 1, "\(field) holds \(mailboxes.count) mailboxes")
        try HeraldFuzzing.check(
            mailboxes[0].address == Array(address.utf8),
            "\(field) goes to \(Invariants.debug(String(decoding: mailboxes[0].address, as: UTF8.self))), not \(Invariants.debug(address))")
        try Invariants.mailbox(address, field)
        // Encoded words are words of a phrase, never inside a quoted string (RFC 2047, 5).
        let name = mailboxes[0].displayName.drop { $0 == 32 }
        if name.first == UInt8(ascii: "\"") {
            try HeraldFuzzing.check(
                !Invariants.containsControl(String(decoding: name, as: UTF8.self).replacing("\t", with: " ")), "\(field) has a control")
        } else {
            try encodedWords(Array(name), "\(field) display name")
        }
    }

    /// An address-list split at the commas outside quoted strings, comments and angle
    /// brackets; each mailbox's address (inside `<…>`, else the whole text) and display name.
    static func addressList(_ value: [UInt8], _ field: String) throws(FuzzFailure) -> [(address: [UInt8], displayName: [UInt8])] {
        var result: [(address: [UInt8], displayName: [UInt8])] = []
        var phrase: [UInt8] = []
        var angle: [UInt8]?
        var inAngle = false
        var afterAngle = false
        var index = 0
        func finish() throws(FuzzFailure) {
            if let angle {
                result.append((angle, phrase))
            } else {
                let trimmed = phrase.drop { $0 == 32 || $0 == 9 }.reversed().drop { $0 == 32 || $0 == 9 }.reversed()
                try HeraldFuzzing.check(!trimmed.isEmpty, "\(field) has an empty mailbox")
                try HeraldFuzzing.check(!trimmed.contains(32), "\(field) has a display name without an address in <>")
                result.append((Array(trimmed), []))
            }
            phrase = []
            angle = nil
            afterAngle = false
        }
        while index < value.count {
            let byte = value[index]
            if inAngle {
                if byte == UInt8(ascii: ">") {
                    inAngle = false
                    afterAngle = true
                } else {
                    angle!.append(byte)
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                // A quoted string, with backslash escapes.
                phrase.append(byte)
                index += 1
                while index < value.count && value[index] != UInt8(ascii: "\"") {
                    if value[index] == UInt8(ascii: "\\") && index + 1 < value.count {
                        phrase.append(value[index])
                        index += 1
                    }
                    phrase.append(value[index])
                    index += 1
                }
                guard index < value.count else { throw FuzzFailure("\(field) has an unterminated quoted string") }
                phrase.append(value[index])
            case UInt8(ascii: "("):
                throw FuzzFailure("\(field) has a comment")
            case UInt8(ascii: "<"):
                try HeraldFuzzing.check(angle == nil, "\(field) has two <…> in one mailbox")
                angle = []
                inAngle = true
            case UInt8(ascii: ">"), UInt8(ascii: ":"), UInt8(ascii: ";"):
                throw FuzzFailure("\(field) has a stray \(Character(Unicode.Scalar(byte)))")
            case UInt8(ascii: ","):
                try finish()
            default:
                if afterAngle && byte != 32 && byte != 9 { throw FuzzFailure("\(field) has text after <…>") }
                phrase.append(byte)
            }
            index += 1
        }
        try HeraldFuzzing.check(!inAngle, "\(field) has an unclosed <")
        try finish()
        return result
    }

    /// The text has no control characters, also inside RFC 2047 `=?UTF-8?B?…?=` words.
    static func encodedWords(_ value: [UInt8], _ field: String) throws(FuzzFailure) {
        let text = String(decoding: value, as: UTF8.self)
        try HeraldFuzzing.check(!Invariants.containsControl(text.replacing("\t", with: " ")), "\(field) has a control character")
        var rest = Substring(text)
        while let start = rest.firstRange(of: "=?UTF-8?B?") {
            guard let end = rest[start.upperBound...].firstRange(of: "?=") else { break }
            guard let decoded = base64(Array(rest[start.upperBound..<end.lowerBound].utf8)) else {
                throw FuzzFailure("\(field) has an encoded word that is not base64")
            }
            // A tab is folding white space, harmless in a display name; any other control is not.
            let word = String(decoding: decoded, as: UTF8.self)
            try HeraldFuzzing.check(
                !Invariants.containsControl(word.replacing("\t", with: " ")),
                "\(field) encodes a control character: \(Invariants.debug(word))")
            rest = rest[end.upperBound...]
        }
    }

    static func base64(_ text: [UInt8]) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - 65
            case UInt8(ascii: "a")...UInt8(ascii: "z"): c - 97 + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - 48 + 52
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var bits: UInt32 = 0
        var count = 0
        for c in text where c != UInt8(ascii: "=") {
            guard let v = value(c) else { return nil }
            bits = bits << 6 | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8((bits >> UInt32(count)) & 0xFF))
            }
        }
        return out
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }

    /// Lines without their CRLF.
    static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == 13 && index + 1 < bytes.count && bytes[index + 1] == 10 {
                lines.append(current)
                current = []
                index += 2
            } else {
                current.append(bytes[index])
                index += 1
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}

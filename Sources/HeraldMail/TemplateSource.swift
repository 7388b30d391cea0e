/// The tags of a template's text with their lines, so that a problem found by rendering (an
/// unknown variable, an unescaped one) can point at the line to fix. Only the default `{{ }}`
/// delimiters are recognised: in a template that changes them, such problems get no line.
enum TemplateSource {
    struct Tag: Equatable {
        /// From 1, as the parser counts.
        let line: Int
        /// `#`, `^`, `/`, `&`, `!`, `>`… or nil for a plain `{{name}}`.
        let sigil: Character?
        /// The name, without a transform (`uppercased(name)` → `name`).
        let name: String
        /// `{{{name}}}`.
        let triple: Bool

        var isUnescaped: Bool { triple || sigil == "&" }
    }

    static func tags(in text: String) -> [Tag] {
        var tags: [Tag] = []
        var line = 1
        var index = text.startIndex
        while index < text.endIndex {
            guard text[index...].hasPrefix("{{") else {
                if text[index].isNewline { line += 1 }
                index = text.index(after: index)
                continue
            }
            var start = text.index(index, offsetBy: 2)
            let triple = text[start...].hasPrefix("{")
            if triple { start = text.index(after: start) }
            guard let close = text[start...].firstRange(of: "}}") else { break }
            var inner = Substring(text[start..<close.lowerBound].trimmed)
            var sigil: Character?
            if let first = inner.first, "#^/&!><$=".contains(first) {
                sigil = first
                inner = Substring(inner.dropFirst().trimmed)
            }
            if let open = inner.lastIndex(of: "("), let end = inner[open...].firstIndex(of: ")") {
                inner = Substring(inner[inner.index(after: open)..<end].trimmed)
            }
            tags.append(Tag(line: line, sigil: sigil, name: String(inner), triple: triple))
            var end = close.upperBound
            if triple && text[end...].hasPrefix("}") { end = text.index(after: end) }
            line += text[index..<end].filter(\.isNewline).count
            index = end
        }
        return tags
    }

    /// The line of the first tag that looks `name` up (`{{name}}`, `{{#name}}`, `{{name.x}}`).
    static func line(ofTagNamed name: String, in text: String) -> Int? {
        tags(in: text).first { tag in
            tag.sigil != "!" && tag.sigil != ">" && (tag.name == name || tag.name.hasPrefix(name + "."))
        }?.line
    }

    /// The line of the first `{{{name}}}` or `{{&name}}` whose name is not in `except`.
    static func lineOfUnescapedTag(in text: String, except: Set<String> = []) -> Int? {
        tags(in: text).first { $0.isUnescaped && !except.contains($0.name) }?.line
    }
}

extension StringProtocol {
    fileprivate var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

import HeraldCore
import HeraldSMTP

/// A token endpoint's answer (the XOAUTH2 client-credentials grant) →
/// `OAuth2TokenResponse.token(status:body:)`: what Herald makes of any HTTP status and body.
///
/// Input: two bytes of the HTTP status (big-endian, taken modulo 600), then after a 0xFF
/// byte the body.
///
/// Invariants: a token only from a 2xx answer, non-empty and made of RFC 6750's token
/// characters only (so no space, CR, LF or the XOAUTH2 separator 0x01 reaches the SASL
/// string), with a lifetime between a millisecond and a year; otherwise `tokenRefused`
/// exactly for a 4xx other than 408 and 429, else `tokenUnavailable`, both transient and
/// both `unavailable` to the courier (a mail is never failed for want of a token); the
/// error's description is printable ASCII and its kept `error_description` at most 200
/// characters without control characters.
enum OAuth2Fuzzer {
    static func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let fields = FuzzFields(input)
        let head = fields.bytes(0) ?? []
        let status = (Int(head.first ?? 0) << 8 | Int(head.dropFirst().first ?? 0)) % 600
        let body = fields.bytes(1) ?? []
        switch OAuth2TokenResponse.token(status: status, body: body) {
        case .success(let token):
            try check((200..<300).contains(status), "a token from HTTP \(status)")
            let value = token.value.value
            try check(!value.isEmpty, "an empty token")
            try check(
                value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"\"\\,;<>@[]{}()".utf8.contains($0) },
                "token \(Invariants.debug(value)) has a character a bearer token cannot have")
            try check(
                token.lifetime >= .milliseconds(1) && token.lifetime <= .seconds(365 * 86_400), "lifetime \(token.lifetime)")
            // The fixed text only (looking for the token itself finds coincidences: a token `c`).
            try check("\(token)" == "an access token valid for \(token.lifetime)", "the token's description is \(token)")
            return "token"
        case .failure(let error):
            let refused = (400..<500).contains(status) && status != 408 && status != 429
            try check(
                error.code == (refused ? .tokenRefused : .tokenUnavailable), "HTTP \(status) gave \(error.code)")
            try check(error.isTransient, "\(error.code) is not transient")
            guard case .unavailable = error.deliveryFailure else {
                throw FuzzFailure("HTTP \(status) gave \(error.deliveryFailure), not unavailable")
            }
            try check(
                error.description.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "description \(Invariants.debug(error.description))")
            if let reply = error.serverReply {
                try check(reply.count <= 200, "error_description kept at \(reply.count) characters")
                try check(
                    !reply.unicodeScalars.contains { $0.properties.generalCategory == .control },
                    "error_description \(Invariants.debug(reply)) keeps a control character")
            }
            return refused ? "refused" : "unavailable"
        }
    }
}

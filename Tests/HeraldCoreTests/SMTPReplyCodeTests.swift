import HeraldCore
import Testing

@Suite("SMTP reply codes in outcome texts")
struct SMTPReplyCodeTests {
    @Test("the first reply code standing alone, and the enhanced status code right after it")
    func parsing() {
        let cases: [(String, Int?, String?)] = [
            ("250 2.0.0 Ok: queued as 4ABC12", 250, "2.0.0"),
            ("250 Message accepted for delivery", 250, nil),
            ("server refused the message: 550 5.7.1 Herald test server: message rejected by policy", 550, "5.7.1"),
            ("deferred: 451-4.3.0 try again later", 451, "4.3.0"),
            ("SMTP rejected (550): the server refused", 550, nil),
            ("after 3 attempts: 421 4.4.2 timeout", 421, "4.4.2"),
            // The class must match the code's; other digits are no code.
            ("550 4.1.1 odd", 550, nil),
            ("user 5501 at 10.2.3.4", nil, nil),
            ("connection refused", nil, nil),
            ("port 6550", nil, nil),
            ("199 no", nil, nil),
        ]
        for (text, code, enhanced) in cases {
            let parsed = SMTPReplyCode(in: text)
            #expect(parsed?.code == code, "\(text)")
            #expect(parsed?.enhanced == enhanced, "\(text)")
        }
    }

    @Test("only in the class the outcome implies: a refusal's 5xx, a deferral's 4xx, an acceptance's 2xx")
    func expectedClass() {
        #expect(SMTPReplyCode(in: "550 5.1.1 no such user", class: 5)?.code == 550)
        #expect(SMTPReplyCode(in: "cannot render the mail: line 250 column 3", class: 5) == nil)
        #expect(SMTPReplyCode(in: "451 4.3.0 later", class: 4)?.enhanced == "4.3.0")
        #expect(SMTPReplyCode(in: "451 4.3.0 later", class: 5) == nil)
    }
}

@testable import ClusDBServer
import Testing

/// Goal: the `Date` header of answers written on the event loop is RFC 9110's IMF-fixdate.
/// Method: known instants (the epoch, a leap day, a date in 2026) against Python's
/// `email.utils.formatdate(t, usegmt=True)`.
@Suite("HTTP Date header")
struct HTTPDateTests {
    @Test("IMF-fixdate for known instants", arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_795_659_991, "Thu, 26 Nov 2026 02:26:31 GMT"),
    ])
    func knownInstants(seconds: Int, expected: String) {
        #expect(HTTPDate.format(seconds) == expected)
    }

    @Test("The current date has the fixed shape")
    func now() {
        let text = HTTPDate.now
        #expect(text.count == 29 && text.hasSuffix(" GMT"), "\(text)")
    }
}

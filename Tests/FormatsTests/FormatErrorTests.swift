import Testing
@testable import Formats

@Suite struct FormatErrorTests {
    @Test func descriptionIsOneLineEvenForHostileNames() {
        // STACK_GLOBAL with a module name holding a newline.
        let b: [UInt8] = [0x80, 0x04, 0x8c, 4] + Array("os\nx".utf8) + [0x8c, 6] + Array("system".utf8) + [0x93, 0x2e]
        let e = formatError { _ = try unpickle(b, allowedGlobals: [], file: "a\tb.pkl") }
        #expect(e?.description == "a\\u{9}b.pkl: pickle names a global that is not allowed: os\\u{a}x.system")
    }
}

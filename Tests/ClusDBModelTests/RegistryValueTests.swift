import ClusDBModel
import Foundation
import Testing

@Suite("Typed values")
struct RegistryValueTests {
    static let samples: [RegistryValue] = [
        .none([]), .none([0, 1, 2]), .string(""), .string("héllo wörld 😀"), .expandString("%SystemRoot%\\x"),
        .binary([]), .binary(Array(0...255)), .dword(0), .dword(.max), .multiString([]), .multiString(["a", "bé", "😀"]),
        .qword(0), .qword(.max),
    ]

    @Test("Type numbers are the Win32 ones (REG_MULTI_SZ is 7)")
    func typeNumbers() {
        #expect(ValueType.none.rawValue == 0)
        #expect(ValueType.string.rawValue == 1)
        #expect(ValueType.expandString.rawValue == 2)
        #expect(ValueType.binary.rawValue == 3)
        #expect(ValueType.dword.rawValue == 4)
        #expect(ValueType.multiString.rawValue == 7)
        #expect(ValueType.qword.rawValue == 11)
        #expect(throws: ClusterError.self) { try ValueType.checked(6) }
        #expect(ValueType(name: "REG_MULTI_SZ") == .multiString)
        #expect(ValueType(name: "reg_sz") == nil)
    }

    @Test("Stored form round-trips", arguments: samples)
    func storedRoundTrip(value: RegistryValue) throws {
        #expect(try RegistryValue(type: value.type, storedBytes: value.storedBytes) == value)
    }

    @Test("Win32 form round-trips and has the Win32 size", arguments: samples)
    func win32RoundTrip(value: RegistryValue) throws {
        let bytes = value.win32Bytes
        #expect(bytes.count == value.win32Size)
        #expect(try RegistryValue(type: value.type, win32Bytes: bytes) == value)
    }

    @Test("JSON form round-trips", arguments: samples)
    func jsonRoundTrip(value: RegistryValue) throws {
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(RegistryValue.self, from: data) == value)
    }

    @Test("Win32 string sizes count UTF-16 units and the NULs")
    func win32Sizes() {
        #expect(RegistryValue.string("ab").win32Bytes == [0x61, 0, 0x62, 0, 0, 0])
        #expect(RegistryValue.multiString(["a", "b"]).win32Bytes == [0x61, 0, 0, 0, 0x62, 0, 0, 0, 0, 0])
        #expect(RegistryValue.multiString([]).win32Size == 2)
        #expect(RegistryValue.string("😀").win32Size == 6)
        #expect(RegistryValue.dword(0x0102_0304).win32Bytes == [4, 3, 2, 1])
    }

    @Test("The value size limit is inclusive")
    func sizeLimit() throws {
        try RegistryValue.binary(Array(repeating: 7, count: Limits.valueDataMaxBytes)).validate()
        #expect(throws: ClusterError.self) { try RegistryValue.binary(Array(repeating: 7, count: Limits.valueDataMaxBytes + 1)).validate() }
        // A string's limit counts its UTF-16 form with the NUL.
        let longest = String(repeating: "a", count: Limits.valueDataMaxBytes / 2 - 1)
        try RegistryValue.string(longest).validate()
        #expect(throws: ClusterError.self) { try RegistryValue.string(longest + "a").validate() }
    }

    @Test("Payload rules: no NUL in strings, no empty string in REG_MULTI_SZ")
    func payloadRules() {
        #expect(throws: ClusterError.self) { try RegistryValue.string("a\u{0}b").validate() }
        #expect(throws: ClusterError.self) { try RegistryValue.expandString("\u{0}").validate() }
        #expect(throws: ClusterError.self) { try RegistryValue.multiString(["a", ""]).validate() }
        #expect(throws: ClusterError.self) { try RegistryValue.multiString(["a\u{0}"]).validate() }
        // Past the small-string form and after multi-byte scalars, at the very end.
        let long = "é€" + String(repeating: "x", count: 40)
        #expect(throws: ClusterError.self) { try RegistryValue.string(long + "\u{0}").validate() }
        #expect(throws: ClusterError.self) { try RegistryValue.multiString([long, "\u{0}" + long]).validate() }
        #expect((try? RegistryValue.string(long).validate()) != nil, "no NUL, no refusal")
    }

    @Test("Malformed stored bytes are refused with ERROR_INVALID_DATA")
    func malformedStored() {
        let cases: [(ValueType, [UInt8])] = [
            (.string, [0xC3]), (.string, [0xFF, 0xFE]), (.expandString, [0x61, 0x00]), (.dword, [1, 2, 3]),
            (.qword, [1, 2, 3, 4, 5, 6, 7, 8, 9]), (.multiString, [0x61]), (.multiString, [0x61, 0, 0]), (.multiString, [0xC3, 0]),
        ]
        for (type, bytes) in cases {
            #expect(throws: ClusterError.self, "\(type) \(bytes)") { try RegistryValue(type: type, storedBytes: bytes) }
        }
    }

    @Test("Malformed Win32 bytes are refused with ERROR_INVALID_PARAMETER")
    func malformedWin32() {
        let cases: [(ValueType, [UInt8])] = [
            (.string, [0x61]), (.string, [0x61, 0]), (.string, [0x00, 0xD8, 0, 0]), (.dword, [1, 2]), (.qword, [1]),
            (.multiString, [0x61, 0, 0, 0]), (.multiString, [0x61, 0, 0, 0, 0, 0, 0, 0]), (.multiString, []),
        ]
        for (type, bytes) in cases {
            do {
                _ = try RegistryValue(type: type, win32Bytes: bytes)
                Issue.record("\(type) \(bytes) was accepted")
            } catch {
                #expect(error.code == .invalidParameter)
            }
        }
    }

    @Test("Command-line DATA parses per type")
    func commandLineData() throws {
        #expect(try RegistryValue(type: .dword, commandLineData: "0x10") == .dword(16))
        #expect(try RegistryValue(type: .dword, commandLineData: "4294967295") == .dword(.max))
        #expect(try RegistryValue(type: .qword, commandLineData: "0xFFFFFFFFFFFFFFFF") == .qword(.max))
        #expect(try RegistryValue(type: .binary, commandLineData: "00Ff") == .binary([0, 255]))
        #expect(try RegistryValue(type: .multiString, commandLineData: #"["a","b"]"#) == .multiString(["a", "b"]))
        for (type, data) in [(ValueType.dword, "4294967296"), (.dword, "-1"), (.dword, "1.5"), (.dword, ""), (.binary, "abc"),
                             (.binary, "zz"), (.multiString, "a,b"), (.multiString, "[1]"), (.qword, "18446744073709551616")] {
            #expect(throws: ClusterError.self, "\(type) \(data)") { try RegistryValue(type: type, commandLineData: data) }
        }
        for value in Self.samples where value.type != .string && value.type != .expandString {
            #expect(try RegistryValue(type: value.type, commandLineData: value.commandLineData) == value)
        }
    }

    @Test("JSON decoding refuses out-of-range numbers and bad shapes")
    func jsonRefusals() {
        let bad = [
            #"{"type":"REG_DWORD","data":4294967296}"#, #"{"type":"REG_DWORD","data":-1}"#, #"{"type":"REG_DWORD","data":1.5}"#,
            #"{"type":"REG_SZ","data":1}"#, #"{"type":"REG_LINK","data":""}"#, #"{"type":"REG_BINARY","data":"0"}"#,
            #"{"type":"REG_MULTI_SZ","data":["a",""]}"#, #"{"type":"REG_QWORD","data":18446744073709551616}"#,
        ]
        for text in bad {
            #expect(throws: (any Error).self, "\(text)") { try JSONDecoder().decode(RegistryValue.self, from: Data(text.utf8)) }
        }
        let largest = try? JSONDecoder().decode(RegistryValue.self, from: Data(#"{"type":"REG_QWORD","data":18446744073709551615}"#.utf8))
        #expect(largest == .qword(.max))
    }
}

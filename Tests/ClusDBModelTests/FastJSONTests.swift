import ClusDBModel
import ClusDBTestSupport
import Foundation
import Testing

/// Goal: the fast path for set-value bodies never disagrees with `JSONDecoder`: for every body it
/// accepts, both give the same request; it may decline anything. Method: hand-picked tricky
/// bodies plus seeded random ones, decoded both ways.
@Suite("FastJSON agrees with JSONDecoder")
struct FastJSONTests {
    static func fast(_ text: String) -> ClientProtocol.SetValueRequest? {
        Array(text.utf8).withUnsafeBytes { ClientProtocol.SetValueRequest(fastJSON: $0) }
    }

    static func slow(_ text: String) -> ClientProtocol.SetValueRequest? {
        try? JSONDecoder().decode(ClientProtocol.SetValueRequest.self, from: Data(text.utf8))
    }

    static func same(_ a: ClientProtocol.SetValueRequest, _ b: ClientProtocol.SetValueRequest) -> Bool {
        a.key == b.key && a.name == b.name && a.value == b.value && a.createKey == b.createKey
    }

    static let bodies: [String] = [
        #"{"key":"A\\B","name":"v","type":"REG_SZ","data":"x","createKey":true}"#,
        #"{"key":"A","name":"","type":"REG_DWORD","data":4294967295}"#,
        #"{"key":"A","name":"v","type":"REG_DWORD","data":4294967296}"#,
        #"{"key":"A","name":"v","type":"REG_QWORD","data":18446744073709551615}"#,
        #"{"key":"A","name":"v","type":"REG_QWORD","data":18446744073709551616}"#,
        #"{"key":"A","name":"v","type":"REG_DWORD","data":1.0}"#,
        #"{"key":"A","name":"v","type":"REG_DWORD","data":1e2}"#,
        #"{"key":"A","name":"v","type":"REG_DWORD","data":-1}"#,
        #"{"key":"A","name":"v","type":"REG_DWORD","data":01}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"\u00e9\ud83d\ude00\n\t\"\\\/"}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"\ud83d"}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"\ude00"}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"\u0000"}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"\x"}"#,
        #"{"key":"A","name":"v","type":"REG_MULTI_SZ","data":["a","b"]}"#,
        #"{"key":"A","name":"v","type":"REG_MULTI_SZ","data":["a",""]}"#,
        #"{"key":"A","name":"v","type":"REG_MULTI_SZ","data":[]}"#,
        #"{"key":"A","name":"v","type":"REG_MULTI_SZ","data":["a",1]}"#,
        #"{"key":"A","name":"v","type":"REG_BINARY","data":"00ffAB"}"#,
        #"{"key":"A","name":"v","type":"REG_BINARY","data":"0"}"#,
        #"{"key":"A","name":"v","type":"REG_NONE","data":""}"#,
        #"{"key":"A","name":"v","type":"REG_EXPAND_SZ","data":"%X%"}"#,
        #"{"key":"A","name":"v","type":"REG_LINK","data":""}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"x","createKey":1}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"x","extra":1}"#,
        #"{"key":"A","key":"B","name":"v","type":"REG_SZ","data":"x"}"#,
        #" { "key" : "A" , "name" : "v" , "type" : "REG_SZ" , "data" : "x" } "#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":"x"} x"#,
        #"{"key":"A","name":"v","type":"REG_SZ"}"#,
        #"{"key":"A","name":"v","type":"REG_SZ","data":null}"#,
        #"[1,2]"#, "", "{", #"{"key":"A",}"#, #"{"key":"A""name":"v"}"#,
        "{\"key\":\"A\",\"name\":\"v\",\"type\":\"REG_SZ\",\"data\":\"raw\ttab\"}",
    ]

    @Test("Hand-picked bodies")
    func handPicked() {
        var fastAccepted = 0
        for body in Self.bodies {
            guard let fast = Self.fast(body) else { continue }
            fastAccepted += 1
            guard let slow = Self.slow(body) else {
                Issue.record("fast path accepted what JSONDecoder refuses: \(body)")
                continue
            }
            #expect(Self.same(fast, slow), "\(body)")
        }
        #expect(fastAccepted >= 10)
    }

    @Test("Seeded random mutations of valid bodies")
    func mutations() {
        var random = SplitMix64(seed: 0xFA57)
        let alphabet = Array(#"{}[]":,\ u0123456789abcdefABCDEF-+.eE"nulltruefalse"#.utf8)
        var agreements = 0
        for _ in 0..<20_000 {
            var bytes = Array(Self.bodies[Int(random.next() % 22)].utf8)
            for _ in 0..<(1 + Int(random.next() % 3)) where !bytes.isEmpty {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[position] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard Array(text.utf8) == bytes, let fast = Self.fast(text) else { continue }
            guard let slow = Self.slow(text) else {
                Issue.record("fast path accepted what JSONDecoder refuses: \(text)")
                continue
            }
            #expect(Self.same(fast, slow), "\(text)")
            agreements += 1
        }
        #expect(agreements > 100)
    }
}

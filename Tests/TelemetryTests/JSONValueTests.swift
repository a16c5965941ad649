import Testing
import Telemetry

@Suite struct JSONValueTests {
    @Test("Strings escape quotes, backslashes and control characters and keep other Unicode as UTF-8")
    func stringEscaping() {
        let value = JSONValue.string("a\"b\\c/\n\r\t\u{08}\u{0C}\u{00}\u{01}\u{1F}\u{7F}é λ̂ 😀\u{2028}")
        #expect(value.encoded() == #""a\"b\\c/\n\r\t\b\f\u0000\u0001\u001f"# + "\u{7F}é λ̂ 😀" + #"\u2028""#)
    }

    @Test("Non-finite doubles are written as null")
    func nonFinite() throws {
        let record: JSONValue = ["nan": .double(.nan), "inf": .double(.infinity), "ninf": .double(-.infinity), "ok": 0.5]
        #expect(record.encoded() == #"{"nan":null,"inf":null,"ninf":null,"ok":0.5}"#)
        #expect(try JSONValue(parsing: record.encoded())["nan"] == .null)
    }

    @Test("Numbers use the shortest exact text and doubles stay doubles", arguments: [
        (JSONValue.int(-42), "-42"), (.double(1), "1.0"), (.double(0.1), "0.1"), (.double(-0.0), "-0.0"),
        (.double(1e-5), "1e-05"), (.double(1.5e300), "1.5e+300"), (.int(Int.max), "9223372036854775807"),
    ])
    func numbers(value: JSONValue, text: String) throws {
        #expect(value.encoded() == text)
        #expect(try JSONValue(parsing: text) == value)
    }

    @Test("Object keys keep insertion order")
    func keyOrder() {
        let value: JSONValue = ["zeta": 1, "alpha": [true, false, nil], "mid": ["b": "x", "a": "y"]]
        #expect(value.encoded() == #"{"zeta":1,"alpha":[true,false,null],"mid":{"b":"x","a":"y"}}"#)
    }

    @Test("Pretty output is indented by two spaces")
    func pretty() {
        let value: JSONValue = ["lambda_hat": [-1.5, 0.25], "steps": 100, "empty": [], "none": .object([])]
        #expect(value.encoded(pretty: true) == """
            {
              "lambda_hat": [
                -1.5,
                0.25
              ],
              "steps": 100,
              "empty": [],
              "none": {}
            }
            """)
    }

    @Test("Encoding then parsing gives back the same value")
    func roundTrip() throws {
        let value: JSONValue = [
            "step": 1200,
            "lambda": JSONValue([-1.25, 3e-7, 12345.678]),
            "name": "run \"α\"\\\n\t\u{01} 😀",
            "flags": [true, false, nil],
            "nested": ["deep": [["x": -0.5]], "empty": .object([])],
            "big": .int(Int.min),
        ]
        let parsed = try JSONValue(parsing: value.encoded())
        #expect(parsed == value)
        #expect(try JSONValue(parsing: value.encoded(pretty: true)) == value)
        #expect(parsed["nested"]?["deep"]?[0]?["x"]?.doubleValue == -0.5)
        #expect(parsed["step"]?.intValue == 1200)
        #expect(parsed["name"]?.stringValue == "run \"α\"\\\n\t\u{01} 😀")
    }

    @Test("The parser decodes \\u escapes including surrogate pairs, and whitespace")
    func parseEscapes() throws {
        let text = #" { "s" : "\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t" , "n" : [ 1 , -0 , 2.5E+2 , 1e-3 ] } "#
        let value = try JSONValue(parsing: text)
        #expect(value == ["s": "é😀/\"\\\u{08}\u{0C}\n\r\t", "n": [1, 0, 250.0, 0.001]])
    }

    @Test("Integers too large for Int become doubles")
    func bigIntegers() throws {
        #expect(try JSONValue(parsing: "123456789012345678901234567890") == .double(1.2345678901234568e29))
    }

    @Test("Invalid JSON is rejected with an error, not a crash", arguments: [
        "", " ", "{", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":1,}", "{1:2}", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"\u{01}\"", "[1] x", "NaN",
    ])
    func invalid(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test("Deep nesting is refused instead of overflowing the stack")
    func deepNesting() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let error = try #require(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        #expect(error.message.contains("nesting"))
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: Never.self) { try JSONValue(parsing: fine) }
    }

    @Test("Parse errors report the byte offset")
    func errorOffset() {
        #expect(throws: JSONParseError(message: "expected ':' after object key", offset: 6)) {
            try JSONValue(parsing: #"{"ab" 1}"#)
        }
    }
}

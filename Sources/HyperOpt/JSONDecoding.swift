import Foundation
import Linalg

/// JSON decoding that works on every thread of every role: the compute threads flush denormals
/// (FTZ/DAZ), and Foundation's decoder then refuses subnormal numbers (`1e-310`) that it wrote
/// itself. Every decode of a configuration, checkpoint header or settings file goes through here.
public enum JSONDecoding {
    /// `JSONDecoder().decode(type, from: data)` with denormals kept while it parses.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try BLASRuntime.keepingDenormals { try JSONDecoder().decode(type, from: data) }
    }
}

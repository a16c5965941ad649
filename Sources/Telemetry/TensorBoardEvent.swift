/// Serializes the few tensorflow `Event` messages an event file needs.
///
/// Field numbers, checked against tensorboard 2.21's `compat/proto/event.proto`,
/// `summary.proto` and `histogram.proto`:
///
/// ```
/// Event          { double wall_time = 1; int64 step = 2; string file_version = 3;
///                  Summary summary = 5; SessionLog session_log = 7; }
/// SessionLog     { SessionStatus status = 1; }          // START = 1
/// Summary        { repeated Value value = 1; }
/// Summary.Value  { string tag = 1; oneof value { float simple_value = 2; HistogramProto histo = 5; } }
/// HistogramProto { double min = 1, max = 2, num = 3, sum = 4, sum_squares = 5;
///                  repeated double bucket_limit = 6 [packed]; repeated double bucket = 7 [packed]; }
/// ```
///
/// As generated proto3 encoders do, fields without explicit presence are left out when they
/// hold their default (zero or empty), so the bytes match Python's `SerializeToString()`;
/// `simple_value` and `histo` sit in a `oneof` and are always written.
enum TensorBoardEvent {
    /// The version string TensorBoard expects in the first record of a file.
    static let fileVersion = "brain.Event:2"

    /// `SessionLog.SessionStatus.START`.
    private static let sessionStart: Int32 = 1

    /// The first record: `Event { wall_time, file_version: "brain.Event:2" }`.
    static func header(wallTime: Double) -> [UInt8] {
        event(wallTime: wallTime, step: 0) { $0.string(3, fileVersion) }
    }

    /// `Event { wall_time, step, session_log { status: START } }`: tells TensorBoard that the
    /// run restarted at `step`, so it drops what an earlier file recorded at `step` or later.
    static func restart(wallTime: Double, step: Int64) -> [UInt8] {
        event(wallTime: wallTime, step: step) { e in
            e.message(7) { $0.enumValue(1, sessionStart) }
        }
    }

    /// `Event { wall_time, step, summary { value… } }`.
    static func summary(wallTime: Double, step: Int64, values: [TensorBoardValue]) -> [UInt8] {
        event(wallTime: wallTime, step: step) { e in
            e.message(5) { summary in
                for value in values {
                    summary.message(1) { encode(value, into: &$0) }
                }
            }
        }
    }

    private static func event(wallTime: Double, step: Int64, body: (inout ProtobufEncoder) -> Void) -> [UInt8] {
        var e = ProtobufEncoder()
        if wallTime != 0 { e.double(1, wallTime) }
        if step != 0 { e.int64(2, step) }
        body(&e)
        return e.bytes
    }

    private static func encode(_ value: TensorBoardValue, into v: inout ProtobufEncoder) {
        if !value.tag.isEmpty { v.string(1, value.tag) }
        switch value {
        case .scalar(_, let x):
            v.float(2, x)
        case .histogram(_, let h):
            v.message(5) { p in
                if h.min != 0 { p.double(1, h.min) }
                if h.max != 0 { p.double(2, h.max) }
                if h.count != 0 { p.double(3, h.count) }
                if h.sum != 0 { p.double(4, h.sum) }
                if h.sumOfSquares != 0 { p.double(5, h.sumOfSquares) }
                p.packedDoubles(6, h.bucketLimits)
                p.packedDoubles(7, h.bucketCounts)
            }
        }
    }
}

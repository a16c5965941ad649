import Foundation
private import CTensorBoardProto

/// Serializes the few TensorBoard `Event` messages an event file needs, through the protobuf-c
/// code generated from `proto/tensorboard/` (a subset of TensorBoard's own `event.proto`,
/// `summary.proto` and `histogram.proto`, same package and field numbers).
///
/// protoc-c follows proto3: a field without explicit presence is left out when it holds its
/// default, so the bytes match Python's `SerializeToString()`; the members of a `oneof`
/// (`file_version`, `summary`, `session_log`; `simple_value`, `histo`) are always written.
enum TensorBoardEvent {
    /// The version string TensorBoard expects in the first record of a file.
    static let fileVersion = "brain.Event:2"

    /// The first record: `Event { wall_time, file_version: "brain.Event:2" }`.
    static func header(wallTime: Double) -> [UInt8] {
        var memory = MessageMemory()
        defer { memory.release() }
        var event = makeEvent(wallTime: wallTime, step: 0)
        event.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION
        event.file_version = memory.string(fileVersion)
        return pack(&event)
    }

    /// `Event { wall_time, step, session_log { status: START } }`: tells TensorBoard that the
    /// run restarted at `step`, so it drops what an earlier file recorded at `step` or later.
    static func restart(wallTime: Double, step: Int64) -> [UInt8] {
        var memory = MessageMemory()
        defer { memory.release() }
        let log = memory.message(Tensorboard__SessionLog.self, tensorboard__session_log__init)
        log.pointee.status = TENSORBOARD__SESSION_LOG__SESSION_STATUS__START
        var event = makeEvent(wallTime: wallTime, step: step)
        event.what_case = TENSORBOARD__EVENT__WHAT_SESSION_LOG
        event.session_log = log
        return pack(&event)
    }

    /// `Event { wall_time, step, summary { value… } }`.
    static func summary(wallTime: Double, step: Int64, values: [TensorBoardValue]) -> [UInt8] {
        var memory = MessageMemory()
        defer { memory.release() }
        let items = memory.array(of: UnsafeMutablePointer<Tensorboard__Summary__Value>?.self, count: values.count)
        for (i, value) in values.enumerated() {
            let v = memory.message(Tensorboard__Summary__Value.self, tensorboard__summary__value__init)
            v.pointee.tag = memory.string(value.tag)
            switch value {
            case .scalar(_, let x):
                v.pointee.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE
                v.pointee.simple_value = x
            case .histogram(_, let h):
                let p = memory.message(Tensorboard__HistogramProto.self, tensorboard__histogram_proto__init)
                p.pointee.min = h.min
                p.pointee.max = h.max
                p.pointee.num = h.count
                p.pointee.sum = h.sum
                p.pointee.sum_squares = h.sumOfSquares
                p.pointee.n_bucket_limit = h.bucketLimits.count
                p.pointee.bucket_limit = memory.copy(h.bucketLimits)
                p.pointee.n_bucket = h.bucketCounts.count
                p.pointee.bucket = memory.copy(h.bucketCounts)
                v.pointee.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO
                v.pointee.histo = p
            }
            items[i] = v
        }
        let summary = memory.message(Tensorboard__Summary.self, tensorboard__summary__init)
        summary.pointee.n_value = values.count
        summary.pointee.value = values.isEmpty ? nil : items
        var event = makeEvent(wallTime: wallTime, step: step)
        event.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY
        event.summary = summary
        return pack(&event)
    }

    private static func makeEvent(wallTime: Double, step: Int64) -> Tensorboard__Event {
        var event = Tensorboard__Event()
        tensorboard__event__init(&event)
        event.wall_time = wallTime
        event.step = step
        return event
    }

    private static func pack(_ event: inout Tensorboard__Event) -> [UInt8] {
        let size = tensorboard__event__get_packed_size(&event)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = size == 0 ? 0 : tensorboard__event__pack(&event, buffer.baseAddress!)
        }
    }
}

/// The C memory one message tree points into, freed together once the tree is packed.
private struct MessageMemory {
    private var blocks: [UnsafeMutableRawPointer] = []

    /// A message initialized by its generated `…__init`.
    mutating func message<M>(_: M.Type, _ initialize: (UnsafeMutablePointer<M>) -> Void) -> UnsafeMutablePointer<M> {
        let pointer = array(of: M.self, count: 1)
        initialize(pointer)
        return pointer
    }

    /// `count` zeroed elements of a C (trivial) type, from `calloc` so that `free` releases them.
    mutating func array<T>(of _: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A copy of `values`, or `nil` when empty.
    mutating func copy(_ values: [Double]) -> UnsafeMutablePointer<Double>? {
        guard !values.isEmpty else { return nil }
        let pointer = array(of: Double.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// A NUL-terminated copy of `text`.
    mutating func string(_ text: String) -> UnsafeMutablePointer<CChar> {
        let pointer = strdup(text)!
        blocks.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    mutating func release() {
        for block in blocks { free(block) }
        blocks = []
    }
}

import CLZ4

/// Standard LZ4 frames (independent blocks, content size and content checksum), so that
/// `lz4 -dc` reads every segment with stock tools.
struct LZ4FrameCompressor: ~Copyable {
    private var output: [UInt8] = []
    let level: Int32

    init(level: Int32 = 0) { self.level = level }

    /// Compresses `input` into one frame; the returned buffer is valid until the next call.
    mutating func compress(_ input: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max1MB
        prefs.frameInfo.blockMode = LZ4F_blockIndependent
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(input.count)
        prefs.compressionLevel = level
        let bound = LZ4F_compressFrameBound(input.count, &prefs)
        if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
        let written = output.withUnsafeMutableBytes { out in
            LZ4F_compressFrame(out.baseAddress, out.count, input.baseAddress, input.count, &prefs)
        }
        if LZ4F_isError(written) != 0 {
            throw EventLogError(.compression, "LZ4 compression failed: \(String(cString: LZ4F_getErrorName(written)))")
        }
        return output.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<written]) }
    }
}

/// Decompresses one whole frame into a buffer of the size the batch header declares.
/// Any malformed frame, checksum mismatch, size mismatch or trailing byte throws.
final class LZ4FrameDecompressor {
    private var context: OpaquePointer?

    init() {}

    deinit {
        if let context { LZ4F_freeDecompressionContext(context) }
    }

    func decompress(_ frame: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        if context == nil {
            var created: OpaquePointer?
            let rc = LZ4F_createDecompressionContext(&created, UInt32(LZ4F_VERSION))
            guard LZ4F_isError(rc) == 0, let created else {
                throw EventLogError(.compression, "cannot create an LZ4 decompression context")
            }
            context = created
        }
        var srcOffset = 0
        var dstOffset = 0
        while true {
            var srcSize = frame.count - srcOffset
            var dstSize = output.count - dstOffset
            let hint = LZ4F_decompress(
                context, output.baseAddress.map { $0 + dstOffset }, &dstSize,
                frame.baseAddress.map { $0 + srcOffset }, &srcSize, nil
            )
            if LZ4F_isError(hint) != 0 {
                resetAfterError()
                throw EventLogError(.corrupted, "LZ4 frame is damaged: \(String(cString: LZ4F_getErrorName(hint)))")
            }
            srcOffset += srcSize
            dstOffset += dstSize
            if hint == 0 { break }  // frame complete, checksum verified
            if srcOffset >= frame.count || (srcSize == 0 && dstSize == 0) {
                resetAfterError()
                throw EventLogError(.corrupted, "LZ4 frame ends early or decompresses to more than the declared \(output.count) bytes")
            }
        }
        guard srcOffset == frame.count else {
            throw EventLogError(.corrupted, "LZ4 frame has \(frame.count - srcOffset) trailing bytes")
        }
        guard dstOffset == output.count else {
            throw EventLogError(.corrupted, "LZ4 frame holds \(dstOffset) bytes, the header declares \(output.count)")
        }
    }

    /// Decompresses a batch's data frame into fresh bytes (its events keep them) and decodes it.
    func decodeBatch(frame: UnsafeRawBufferPointer, header: BatchHeader) throws -> [RecordedEvent] {
        let rawLength = Int(header.rawLength)
        var failure: (any Error)?
        let raw = [UInt8](unsafeUninitializedCapacity: rawLength) { buffer, initialized in
            do {
                try decompress(frame, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = rawLength
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return try EnvelopeCodec.decodeBatch(raw, header: header)
    }

    private func resetAfterError() {
        if let context { LZ4F_freeDecompressionContext(context) }
        context = nil
    }
}

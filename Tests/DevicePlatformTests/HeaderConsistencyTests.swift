import Foundation
import Testing
@testable import DevicePlatform

/// Firmware/include/smmusim.h and the Swift register enums describe one map: every
/// offset, flag and code the header defines must equal the emulator's.
@Suite struct HeaderConsistencyTests {
    static func defines() throws -> [String: UInt64] {
        let path = Firmware.root.appendingPathComponent("Firmware/include/smmusim.h").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 3, words[0] == "#define" else { continue }
            var value = String(words[2])
            // `(1u << n)`: a single-bit flag.
            if value == "(1u" && words.count >= 5 && words[3] == "<<", let n = UInt64(words[4].dropLast()) {
                out[String(words[1])] = 1 << n
                continue
            }
            if value.hasPrefix("(") && value.hasSuffix(")") { value = String(value.dropFirst().dropLast()) }
            let parsed = value.hasPrefix("0x") ? UInt64(value.dropFirst(2), radix: 16) : UInt64(value)
            if let parsed { out[String(words[1])] = parsed }
        }
        return out
    }

    @Test func controlRegistersMatch() throws {
        let d = try Self.defines()
        let expected: [(String, UInt64)] = [
            ("SMMUSIM_CTRL_BASE", DeviceConfig.controlBase), ("SMMUSIM_SRAM_BASE", DeviceConfig.sramBase),
            ("SMMUSIM_REG_DMA_CHANNELS", ControlRegister.dmaChannels.rawValue),
            ("SMMUSIM_REG_QUEUE_COUNT", ControlRegister.queueCount.rawValue),
            ("SMMUSIM_REG_IRQ_PENDING", ControlRegister.irqPending.rawValue),
            ("SMMUSIM_REG_IRQ_ENABLE", ControlRegister.irqEnable.rawValue),
            ("SMMUSIM_REG_IRQ_CLAIM", ControlRegister.irqClaim.rawValue),
            ("SMMUSIM_REG_IRQ_COMPLETE", ControlRegister.irqComplete.rawValue),
            ("SMMUSIM_REG_IRQ_IN_SERVICE", ControlRegister.irqInService.rawValue),
            ("SMMUSIM_REG_HWIN_BASE", HostWindowRegister.base.rawValue),
            ("SMMUSIM_REG_HWIN_PASID", HostWindowRegister.pasid.rawValue),
            ("SMMUSIM_REG_HWIN_FLAGS", HostWindowRegister.flags.rawValue),
            ("SMMUSIM_REG_HWIN_FAULT_ADDR", HostWindowRegister.faultAddress.rawValue),
            ("SMMUSIM_REG_HWIN_FAULT_INFO", HostWindowRegister.faultInfo.rawValue),
            ("SMMUSIM_REG_HWIN_LATENCY", HostWindowRegister.lastLatency.rawValue),
            ("SMMUSIM_HWIN_BASE", HostWindow.base), ("SMMUSIM_HWIN_SIZE", HostWindow.size),
            ("SMMUSIM_IRQ_DMA_ERROR", UInt64(DeviceInterruptSource.dmaError)),
            ("SMMUSIM_IRQ_NONE", DeviceInterruptSource.none),
            ("SMMUSIM_DMA_STRIDE", ControlPage.dmaChannelStride), ("SMMUSIM_QUEUE_STRIDE", ControlPage.queueStride),
        ]
        for (name, value) in expected { #expect(d[name] == value, "\(name)") }
    }

    @Test func dmaQueueAndEntryDefinitionsMatch() throws {
        let d = try Self.defines()
        let dma: [(String, DMAChannelRegister)] = [
            ("SRC", .source), ("DST", .destination), ("LEN", .length), ("OP", .operation), ("PASID", .pasid),
            ("FLAGS", .flags), ("PATTERN", .pattern), ("QUEUE", .queue), ("CONTROL", .control), ("STATUS", .status),
            ("RESULT", .result), ("BYTES_DONE", .bytesDone), ("ERR_ADDR", .errorAddress), ("ERR_INFO", .errorInfo),
        ]
        for (name, r) in dma { #expect(d["SMMUSIM_DMA_" + name] == r.rawValue, "\(name)") }
        #expect(dma.count == DMAChannelRegister.allCases.count)
        let queue: [(String, QueueFirmwareRegister)] = [
            ("SQ_BASE", .sqBase), ("CQ_BASE", .cqBase), ("DEPTH", .depth), ("PASID", .pasid), ("STATE", .state),
            ("SQ_TAIL", .sqTail), ("SQ_HEAD", .sqHead), ("CQ_TAIL", .cqTail), ("CQ_HEAD", .cqHead), ("EPOCH", .epoch),
            ("GENERATION", .generation),
        ]
        for (name, r) in queue { #expect(d["SMMUSIM_Q_" + name] == r.rawValue, "\(name)") }
        #expect(queue.count == QueueFirmwareRegister.allCases.count)
        for op in DMAOperation.allCases {
            #expect(d["SMMUSIM_OP_" + "\(op)".uppercased()] == UInt64(op.rawValue))
        }
        let reasons: [(String, DMAFaultReason)] = [
            ("TRANSLATION", .translation), ("PERMISSION", .permission), ("ABORTED", .aborted),
            ("PRI_FAILED", .pageRequestFailed), ("LOCAL_RANGE", .localRange), ("CANCELLED", .cancelled), ("INVALID", .invalid),
        ]
        for (name, r) in reasons { #expect(d["SMMUSIM_DMA_ERR_" + name] == UInt64(r.rawValue), "\(name)") }
        #expect(reasons.count == DMAFaultReason.allCases.count)
        #expect(d["SMMUSIM_DMA_BUSY"] == DMAChannelStatus.busy.rawValue && d["SMMUSIM_DMA_ERROR"] == DMAChannelStatus.error.rawValue)
        #expect(d["SMMUSIM_DMA_CMD_START"] == DMAChannelCommand.start && d["SMMUSIM_DMA_CMD_ABORT"] == DMAChannelCommand.abort)
        #expect(d["SMMUSIM_Q_RUNNING"] == QueueState.running.rawValue && d["SMMUSIM_Q_STOPPED"] == QueueState.stopped.rawValue)
        #expect(d["SMMUSIM_SQE_SIZE"] == HardwareQueue.submissionEntrySize && d["SMMUSIM_CQE_SIZE"] == HardwareQueue.completionEntrySize)
        let flags: [(String, UInt64)] = [
            ("DMA_FLAG_SRC_HOST", DMAChannelFlags.sourceHost), ("DMA_FLAG_DST_HOST", DMAChannelFlags.destinationHost),
            ("DMA_FLAG_IRQ", DMAChannelFlags.interrupt), ("DMA_FLAG_PRIV", DMAChannelFlags.privileged),
            ("DMA_FLAG_PASID", DMAChannelFlags.pasid), ("DMA_ERR_WRITE", 0x100),
            ("HWIN_FLAG_PASID", HostWindow.flagPASID), ("HWIN_FLAG_PRIV", HostWindow.flagPrivileged),
        ]
        for (name, value) in flags { #expect(d["SMMUSIM_" + name] == value, "\(name)") }
        #expect(d["SMMUSIM_MAX_DMA_CHANNELS"] == 16 && d["SMMUSIM_MAX_QUEUES"] == 16)
        #expect(SubmissionEntry(.fill, length: 1, tag: 0x1122).bytes[0x28] == 0x22)   // tag at 0x28, as the C struct
    }
}

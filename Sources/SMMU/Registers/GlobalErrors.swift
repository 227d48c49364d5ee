// Global errors and interrupt sources of the SMMU (IHI 0070 G.b §6.3.16–§6.3.23,
// §6.3.30–32, §6.3.34–36, §7.5; reference linux-facts.md §1.5).

import SMMUArch

/// A set of SMMU_GERROR conditions, one bit per error, at the register's bit positions.
public struct GlobalErrors: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    private init(_ f: BitField) { rawValue = UInt32(truncatingIfNeeded: f.mask) }

    public static let commandQueueError = GlobalErrors(GERROR.cmdqErr)
    public static let eventQueueAbort = GlobalErrors(GERROR.eventqAbtErr)
    public static let priQueueAbort = GlobalErrors(GERROR.priqAbtErr)
    public static let commandSyncMSIAbort = GlobalErrors(GERROR.msiCmdqAbtErr)
    public static let eventQueueMSIAbort = GlobalErrors(GERROR.msiEventqAbtErr)
    public static let priQueueMSIAbort = GlobalErrors(GERROR.msiPriqAbtErr)
    public static let globalErrorMSIAbort = GlobalErrors(GERROR.msiGerrorAbtErr)
    public static let serviceFailureMode = GlobalErrors(GERROR.sfmErr)

    /// Every architected error with its specification name.
    public static let named: [(GlobalErrors, String)] = GERROR.fields.map { (GlobalErrors($0), $0.name) }

    public var description: String {
        let names = GlobalErrors.named.filter { contains($0.0) }.map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: "|")
    }
}

/// The three interrupt sources of the Non-secure programming interface, each with an
/// enable in SMMU_IRQ_CTRL and MSI configuration in its *_IRQ_CFG0/1/2 registers.
public enum InterruptSource: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case globalError
    case eventQueue
    case priQueue

    /// The SMMU_IRQ_CTRL field that enables it and guards its IRQ_CFG registers.
    public var enableField: BitField {
        switch self {
        case .globalError: IRQ_CTRL.gerrorIRQEn
        case .eventQueue: IRQ_CTRL.eventqIRQEn
        case .priQueue: IRQ_CTRL.priqIRQEn
        }
    }

    /// Its IRQ_CFG0, IRQ_CFG1 and IRQ_CFG2 registers.
    public var configRegisters: (RegisterName, RegisterName, RegisterName) {
        switch self {
        case .globalError: (.gerrorIRQCfg0, .gerrorIRQCfg1, .gerrorIRQCfg2)
        case .eventQueue: (.eventqIRQCfg0, .eventqIRQCfg1, .eventqIRQCfg2)
        case .priQueue: (.priqIRQCfg0, .priqIRQCfg1, .priqIRQCfg2)
        }
    }

    public var description: String {
        switch self {
        case .globalError: "GERROR"
        case .eventQueue: "EVENTQ"
        case .priQueue: "PRIQ"
        }
    }
}

/// An MSI target as programmed in one source's IRQ_CFG0/1/2 registers.
public struct MSIConfiguration: Hashable, Sendable {
    /// IRQ_CFG0.ADDR: the doorbell address (bits [55:2], in place). Zero disables the MSI
    /// (§6.3.21: "If ADDR == 0, no MSI is sent").
    public var address: UInt64
    /// IRQ_CFG1.DATA: the payload.
    public var data: UInt32
    /// IRQ_CFG2.MemAttr.
    public var memAttr: UInt8
    /// IRQ_CFG2.SH.
    public var shareability: UInt8
    /// PRIQ_IRQ_CFG2.LO ("last only"): signal only for the last request of a group.
    public var lastOnly: Bool

    /// True if an MSI is sent at all.
    public var isEnabled: Bool { address != 0 }
}

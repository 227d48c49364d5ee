// The stage 1 CD the SMMU and endpoint tests program (written with PhysicalMemory.store).

import Memory
import SMMUArch

extension RawCD {
    /// A valid AArch64 CD translating through `ttb0` with a 48-bit VA range (T0SZ 16, 4 KiB
    /// granule, TTB1 walks disabled), the given IPS and ASID, and Linux's MAIR.
    public static func stage1(ttb0: UInt64, asid: UInt16 = 1, record: Bool = true, stall: Bool = false,
                              ips: AddressSize = .bits48, valid: Bool = true) -> RawCD {
        var raw = RawCD()
        raw.v = valid
        raw.aa64 = true
        raw.a = true
        raw.r = record
        raw.s = stall
        raw.t0sz = 16
        raw.tg0 = Granule.kb4.tg0Encoding
        raw.epd1 = true
        raw.ttb0 = ttb0
        raw.ips = ips.rawValue
        raw.asid = UInt64(asid)
        raw.mair = 0x44_FF_04_00
        return raw
    }
}
